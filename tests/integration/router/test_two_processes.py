"""Two router processes in one consumer group route a burst of 5,000 tickets; one is
SIGKILLed mid-burst and restarted. Every ticket gets exactly one first ticket.routed (by
ticket id and by event id), none is lost, no waiting ticket is assigned twice, and no agent
is ever over its cap, though both processes assign from the same tiers at once."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import envelope as ce
from shared.charter import load_charter
from shared.db import drop_schemas
from shared.emitters import emitter
from shared.events import Priority, RoutingReason, TicketResolved, Tier
from shared.kafka import client_options
from tests.builders import ticket_created
from tests.integration.router.conftest import ROUTED, router_env
from tests.kafka_tools import TopicReader, private_topics
from tests.processes import ServiceProcess
from tests.unit.router.builders import BURST

TICKETS = 5000
INTENTS = ["login"] * 6 + ["billing", "data_loss", "crash", "refund_fraud"]


def created(ticket_id: str, i: int) -> ce.KafkaRecord:
    event = ticket_created(
        ticket_id, datetime.now(UTC), intent=INTENTS[i % 10], priority=list(Priority)[i % 4], blocked=i % 20 == 7
    )
    return ce.encode(
        ce.Envelope(
            event=event,
            id=ce.new_id(),
            source=emitter(event.TYPE),
            time=datetime.now(UTC),
            correlation_id=f"corr-{ticket_id}",
        )
    )


def resolved(ticket_id: str) -> ce.KafkaRecord:
    event = TicketResolved(ticket_id=ticket_id, tier=Tier.L1, agent_id="someone", resolution_code="done")
    return ce.encode(
        ce.Envelope(
            event=event,
            id=ce.new_id(),
            source=emitter(event.TYPE),
            time=datetime.now(UTC),
            correlation_id=f"corr-{ticket_id}",
        )
    )


async def publish(producer: AIOKafkaProducer, topic: str, records) -> None:
    sent = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records]
    await producer.flush()
    for future in sent:
        await future


async def test_two_processes_and_a_kill_lose_nothing_and_never_over_assign(platform):
    charter = load_charter(BURST)
    schema = f"router_{uuid.uuid4().hex[:10]}"
    ids = [f"burst-{uuid.uuid4().hex[:6]}-{i}" for i in range(TICKETS)]
    async with private_topics(platform.kafka_bootstrap_servers) as (prefix, topics):
        env = router_env(prefix, schema, BURST, LOG_LEVEL="WARNING", ROUTER_ASSIGN_INTERVAL_S="1")
        producer = AIOKafkaProducer(
            bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", linger_ms=5, **client_options()
        )
        await producer.start()
        first, second = ServiceProcess("router", env), ServiceProcess("router", env)
        restarted = ServiceProcess("router", env)
        try:
            async with TopicReader(platform.kafka_bootstrap_servers, topics.events) as events:
                first.start(), second.start()

                def first_routings(records):
                    return {r.key for r in records if dict(r.headers)["ce_type"] == ROUTED}

                half = TICKETS // 2
                await publish(producer, topics.events, [created(t, i) for i, t in enumerate(ids[:half])])
                await events.wait_for(lambda rs: len(first_routings(rs)) >= 1000, timeout=60)
                first.kill()  # mid-burst: its batches in flight, its relay perhaps the leader
                await publish(producer, topics.events, [created(t, i) for i, t in enumerate(ids[half:], half)])
                await publish(producer, topics.events, [resolved(t) for t in ids[:500]])  # capacity frees
                restarted.start()
                await events.wait_for(lambda rs: len(first_routings(rs)) >= TICKETS, timeout=120)
                await events.settle(4.0)  # the assignments the resolutions allow, and anything doubled
        finally:
            for process in (first, second, restarted):
                process.kill()
            await producer.stop()

        first_ids, assignment_ids = defaultdict(set), defaultdict(set)
        for record in events.records:
            if dict(record.headers)["ce_type"] != ROUTED:
                continue
            routed = ce.decode(record.key, record.value, record.headers)
            kind = assignment_ids if routed.event.reason is RoutingReason.ASSIGNMENT else first_ids
            kind[routed.ticket_id].add(routed.id)
        assert set(first_ids) == set(ids)  # none lost
        assert all(len(found) == 1 for found in first_ids.values())  # exactly one first routing each
        assert all(len(found) == 1 for found in assignment_ids.values())  # each wait ends once
        assert assignment_ids  # resolutions freed seats that waiting tickets took

        conn = await asyncpg.connect(platform.database_url)
        try:
            seats = await conn.fetch(
                f"SELECT a.tier, a.agent, a.open_tickets, count(t.ticket_id) AS held "
                f"FROM {schema}.agents a LEFT JOIN {schema}.tickets t "
                "ON t.tier = a.tier AND t.assignee = a.agent GROUP BY 1, 2, 3"
            )
            waiting = {
                row[0]
                for row in await conn.fetch(
                    f"SELECT DISTINCT tier FROM {schema}.tickets WHERE assignee IS NULL AND NOT resolved AND NOT shadow"
                )
            }
            stored = await conn.fetchval(f"SELECT count(*) FROM {schema}.tickets")
        finally:
            await conn.close()
            await drop_schemas(platform.database_url, schema)
    assert stored == TICKETS
    for tier, agent, open_tickets, held in seats:
        cap = charter.tiers[Tier(tier)].roster.max_open_per_agent
        assert open_tickets == held <= cap, (tier, agent)  # the counters are the truth, and within the cap
    assert Tier.L1.value in waiting  # the burst overflowed L1 ...
    for tier, agent, open_tickets, _ in seats:  # ... and every agent who takes tickets there is full
        if tier == Tier.L1.value:
            assert open_tickets == charter.tiers[Tier.L1].roster.max_open_per_agent, agent
