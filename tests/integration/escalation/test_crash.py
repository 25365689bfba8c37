"""Crash safety: 2,000 tickets with pending SLA timers and handoffs in flight; escalation,
a real process, is SIGKILLed twice (once while deciding handoffs, once while firing
timers) and restarted. Every due timer fires exactly once, and every ticket is escalated
out of L1 exactly once: by its handoff or by its time-in-tier breach (counted by ticket
and by event id; the relay may publish a record twice after a kill, with the same id)."""

from collections import Counter, defaultdict
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import envelope as ce
from shared.db import drop_schemas
from shared.emitters import emitter
from shared.events import (
    EscalationReason,
    HandoffChecklist,
    Priority,
    RoutingReason,
    TicketEscalationRequested,
    TicketRouted,
    Tier,
)
from shared.kafka import client_options
from tests.builders import ticket_created
from tests.integration.escalation.conftest import escalation_env
from tests.kafka_tools import TopicReader, private_topics
from tests.processes import ServiceProcess

TICKETS = 2000  # even ones ask for a complete handoff right after their routing
CHECKLIST = HandoffChecklist(
    impact="one team", steps_attempted=["retried"], attachments=["req-1"], problem_statement="exports time out"
)


def stream(ticket: str, handoff: bool) -> list[ce.Envelope]:
    """What intake and router would have published for one ticket, in order."""
    now = datetime.now(UTC)
    created = ce.new_id()
    events = [
        ticket_created(ticket, now, intent="how_to", priority=Priority.P2, subject="exports"),
        TicketRouted(ticket_id=ticket, tier=Tier.L1, queue="l1-general", reason=RoutingReason.RULE),
    ]
    if handoff:
        events.append(
            TicketEscalationRequested(
                ticket_id=ticket,
                from_tier=Tier.L1,
                to_tier=Tier.L2,
                agent_id="ana",
                checklist=CHECKLIST,
                hypothesis="the export job hits a timeout",
            )
        )
    return [
        ce.Envelope(
            event=event,
            id=created if i == 0 else ce.new_id(),
            source=emitter(event.TYPE),
            time=now,
            correlation_id=created,
            causation_id=None if i == 0 else created,
        )
        for i, event in enumerate(events)
    ]


async def test_killed_twice_every_due_timer_fires_once_and_no_escalation_is_lost(platform, unique):
    bootstrap = platform.kafka_bootstrap_servers
    schema = f"escalation_{unique}"
    try:
        async with private_topics(bootstrap) as (_, topics), TopicReader(bootstrap, topics.events) as events:
            # targets of 3 s and 6 s at L1 (escalation-fast.yaml): they come due while escalation is down
            env = escalation_env(
                topics,
                unique,
                "escalation-fast.yaml",
                ESCALATION_BATCH_SIZE="100",
                ESCALATION_TIMER_BATCH="50",
                ESCALATION_TIMER_POLL_S="1",
                LOG_LEVEL="WARNING",
            )
            processes: list[ServiceProcess] = []
            try:
                processes.append(ServiceProcess("escalation", env).start())
                requests: dict[str, str] = {}
                producer = AIOKafkaProducer(
                    bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20, **client_options()
                )
                await producer.start()
                try:
                    for n in range(TICKETS):
                        ticket = f"crash-{unique}-{n}"
                        for envelope in stream(ticket, handoff=n % 2 == 0):
                            record = ce.encode(envelope)
                            await producer.send(topics.events, record.value, key=record.key, headers=record.headers)
                            if envelope.type == "ticket.escalation_requested":
                                requests[ticket] = envelope.id
                    await producer.flush()
                finally:
                    await producer.stop()

                def seen(kind: str) -> int:
                    return sum(1 for r in events.records if dict(r.headers)["ce_type"] == kind.encode())

                await events.wait_for(lambda _: seen("ticket.escalated") >= 50, timeout=60)
                processes[-1].kill()  # handoffs in flight
                processes.append(ServiceProcess("escalation", env).start())
                await events.wait_for(lambda _: seen("ticket.sla_breached") >= 200, timeout=90)
                processes[-1].kill()  # firing in flight
                processes.append(ServiceProcess("escalation", env).start())
                await events.wait_for(
                    lambda _: (
                        len({r.key for r in events.records if dict(r.headers)["ce_type"] == b"ticket.escalated"})
                        >= TICKETS
                    ),
                    timeout=120,
                )
                await events.settle(3.0)
                assert processes[-1].terminate() in (0, -15), processes[-1].output()
            finally:
                for process in processes:
                    process.kill()

            answers = [
                a
                for a in (ce.decode(r.key, r.value, r.headers) for r in events.records)
                if a.source == "ladder/escalation"
            ]
            unique_answers = {a.id: a for a in answers}.values()  # a record published twice is one event
            by_ticket: dict[str, list[ce.Envelope]] = defaultdict(list)
            for answer in unique_answers:
                by_ticket[answer.ticket_id].append(answer)
            assert len(by_ticket) == TICKETS
            reasons: Counter[str] = Counter()
            for ticket, mine in by_ticket.items():
                kinds = Counter(a.type for a in mine)
                (escalated,) = [a for a in mine if a.type == "ticket.escalated"]  # exactly once: none lost, none twice
                assert (escalated.event.from_tier, escalated.event.to_tier) == (Tier.L1, Tier.L2)
                breaches = Counter(a.event.kind for a in mine if a.type == "ticket.sla_breached")
                reasons[escalated.event.reason] += 1
                if escalated.event.reason is EscalationReason.HANDOFF:  # in time: the handoff cancelled both timers
                    assert escalated.causation_id == requests[ticket] and kinds == {"ticket.escalated": 1}
                else:  # the timers fired first (each once); a late handoff request is told L1 no longer owns it
                    assert breaches == {"first_response": 1, "time_in_tier": 1}, (ticket, kinds)
                    breach = next(a for a in mine if a.type == "ticket.sla_breached" and a.event.kind == "time_in_tier")
                    assert escalated.causation_id == breach.id
                    if ticket in requests:
                        (late,) = [a for a in mine if a.type == "ticket.bounced"]
                        assert late.event.missing == ["owner"] and late.causation_id == requests[ticket]
                    else:
                        assert kinds == {"ticket.sla_breached": 2, "ticket.escalated": 1}
            assert reasons[EscalationReason.SLA_BREACH] >= TICKETS // 2  # every ticket without a handoff
            assert sum(reasons.values()) == TICKETS

            conn = await asyncpg.connect(platform.database_url)
            try:
                states = dict(await conn.fetch(f"SELECT state, count(*) FROM {schema}.sla_timers GROUP BY state"))
            finally:
                await conn.close()
            assert "pending" not in states  # every due timer was settled...
            assert states["fired"] == sum(
                1 for a in unique_answers if a.type == "ticket.sla_breached"
            )  # ...and fired once
    finally:
        await drop_schemas(platform.database_url, schema)
