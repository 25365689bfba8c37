"""SLA timers fire on stream time, not wall-clock time (docs/architecture/escalation.md,
invariant 10), on the real broker and database: escalation is stopped with three tickets'
first-response timers pending; while it is down one of them is answered on the topic and
its deadline passes; escalation starts again, and the batch that reads the answer is held
while the timer loop runs. The answered ticket gets no breach (its response was unread
when the deadline passed, but the stream answered it in time); the silent one on another
partition breaches at once, the silent one on the answered ticket's partition once that
partition was read; each exactly once."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from services.escalation.main import create_app as create_escalation
from services.escalation.settings import EscalationSettings
from shared import envelope as ce
from shared.db import drop_schemas
from shared.events import SlaKind, Tier
from shared.kafka import client_options
from shared.partitioning import partition_for
from tests.apps import in_process
from tests.integration.escalation.conftest import PARTITIONS, Clock, escalation_env
from tests.kafka_tools import TopicReader, private_topics
from tests.unit.escalation import builders as b


def tickets(unique: str) -> tuple[str, str, str]:
    """An answered ticket, a silent one on its partition and a silent one on another."""
    names = (f"st-{unique}-{n}" for n in range(1000))
    answered = next(names)
    home = partition_for(answered.encode(), PARTITIONS)
    silent_here = next(n for n in names if partition_for(n.encode(), PARTITIONS) == home)
    silent_there = next(n for n in names if partition_for(n.encode(), PARTITIONS) != home)
    return answered, silent_here, silent_there


async def test_a_restart_after_downtime_breaches_only_what_the_stream_left_unanswered(platform, unique):
    bootstrap = platform.kafka_bootstrap_servers
    schema = f"escalation_{unique}"
    clock = Clock()
    answered, silent_here, silent_there = tickets(unique)
    try:
        async with (
            private_topics(bootstrap) as (_, topics),
            TopicReader(bootstrap, topics.events) as events,
        ):
            env = escalation_env(topics, unique, "escalation-24x7.yaml", ESCALATION_TIMER_POLL_S="1")
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **client_options()
            )
            await producer.start()

            async def publish(*envelopes: ce.Envelope) -> None:
                for envelope in envelopes:
                    record = ce.encode(envelope)
                    await producer.send_and_wait(topics.events, record.value, key=record.key, headers=record.headers)

            @asynccontextmanager
            async def escalation() -> AsyncIterator[object]:
                async with in_process(create_escalation, EscalationSettings, env, clock=clock) as (app, _):
                    yield app

            async def timer_states(conn_pool, ticket: str) -> dict[str, str]:
                rows = await conn_pool.fetch(
                    f"SELECT kind, state FROM {schema}.sla_timers WHERE ticket_id = $1", ticket
                )
                return {row["kind"]: row["state"] for row in rows}

            try:
                async with escalation() as app:
                    for ticket in (answered, silent_here, silent_there):  # P2 at L1: first response 5 min
                        await publish(b.created(ticket, at=clock()), b.routed(Tier.L1, ticket, at=clock()))
                    pool = app.state.runtime.pool
                    async with asyncio.timeout(20):
                        for ticket in (answered, silent_here, silent_there):
                            while True:
                                states = await timer_states(pool, ticket)
                                if states == {"first_response": "pending", "time_in_tier": "pending"}:
                                    break
                                await asyncio.sleep(0.1)

                # escalation is down: the answer reaches the topic in time, then the deadline passes
                await publish(b.responded(Tier.L1, answered, at=clock()))
                clock.advance(timedelta(minutes=6))  # past first response (5 min), not time in tier (10 min)

                # The batch that reads the answer is held (the kit's inbox is locked; the timer
                # loop never touches it) until the loop has shown it runs: the silent ticket on
                # the other, caught-up partition breaches while the answered one's is behind.
                holder = await asyncpg.connect(platform.database_url)
                holding = holder.transaction()
                await holding.start()
                try:
                    await holder.execute(f"LOCK TABLE {schema}.inbox IN ACCESS EXCLUSIVE MODE")
                    async with escalation() as app:
                        await events.wait_for(lambda _: bool(escalated(events, silent_there)), timeout=30)
                        await events.settle(2.5)  # more passes (poll 1 s) with the answer still unread
                        assert escalated(events, answered) == escalated(events, silent_here) == []
                        await holding.commit()
                        await events.wait_for(lambda _: bool(escalated(events, silent_here)), timeout=30)
                        await events.settle(3.0)  # later passes, with the stream read, fire nothing more
                        assert await timer_states(app.state.runtime.pool, answered) == {
                            "first_response": "cancelled",
                            "time_in_tier": "pending",
                        }
                finally:
                    await holder.close()  # ends the lock if an assertion failed while it was held
            finally:
                await producer.stop()

            assert escalated(events, answered) == []  # no false breach
            for ticket in (silent_here, silent_there):
                (breach,) = escalated(events, ticket)  # a real one, exactly once
                assert (breach.type, breach.event.kind, breach.event.tier) == (
                    "ticket.sla_breached",
                    SlaKind.FIRST_RESPONSE,
                    Tier.L1,
                )
    finally:
        await drop_schemas(platform.database_url, schema)


def escalated(events: TopicReader, ticket: str) -> list[ce.Envelope]:
    return [
        e
        for e in (ce.decode(r.key, r.value, r.headers) for r in events.with_key(ticket))
        if e.source == "ladder/escalation"
    ]
