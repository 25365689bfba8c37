"""Ticket cycles on the real broker and database: intake, router, escalation and metrics in
this process on private topics and schemas. A ticket is created, escalated, resolved and
reopened; then events its first cycle caused land after the reopen (a breach, the escalation
it made, the routing that followed). Every consumer finds them stale and counts them:
router does not move the ticket, escalation arms no timer, the KPIs do not change."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.escalation.main import create_app as create_escalation
from services.escalation.settings import EscalationSettings
from services.intake.main import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.metrics.main import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from services.router.main import create_app as create_router
from services.router.settings import RouterSettings
from shared import envelope as ce
from shared.db import drop_schemas
from shared.events import (
    EscalationReason,
    RoutingReason,
    SlaKind,
    TicketEscalated,
    TicketRouted,
    TicketSlaBreached,
    Tier,
)
from shared.kafka import client_options, topic_partitions
from simulator.compare import StreamCopy, differences, exported_samples
from simulator.truth import expected_samples
from tests.apps import in_process
from tests.integration.escalation.conftest import handoff
from tests.integration.intake.conftest import HELPDESK, intake_env
from tests.integration.metrics.conftest import kpi_series
from tests.kafka_tools import TopicReader, private_topics

SERVICES = ("router", "escalation", "metrics")


async def caught_up(bootstrap: str, topic: str, groups: list[str], timeout: float = 60) -> None:
    """Until every group has committed the end of every partition, twice in a row (a consumer
    that emits moves the end; the second look sees its answers consumed too)."""
    partitions = await topic_partitions(bootstrap, topic)
    deadline, settled = time.monotonic() + timeout, 0
    consumers = [
        AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=g, enable_auto_commit=False, **client_options())
        for g in groups
    ]
    for consumer in consumers:
        await consumer.start()
    try:
        while settled < 2:
            ends = await consumers[0].end_offsets(partitions)
            done = True
            for consumer in consumers:
                committed = [await consumer.committed(tp) or 0 for tp in partitions]
                done &= all(c >= ends[tp] for c, tp in zip(committed, partitions, strict=True))
            settled = settled + 1 if done else 0
            assert time.monotonic() < deadline, f"consumers did not catch up with {topic}"
            await asyncio.sleep(0.5)
    finally:
        for consumer in consumers:
            await consumer.stop()


def ignored(metrics_text: str, reason: str, name: str = "support_consumer_events_ignored") -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == name:
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("reason") == reason:
                    return sample.value
    return 0.0


async def test_a_late_event_of_an_earlier_cycle_is_stale_everywhere(platform):
    bootstrap, run = platform.kafka_bootstrap_servers, uuid.uuid4().hex[:10]
    schemas = {service: f"{service}_cy_{run}" for service in SERVICES}
    async with private_topics(bootstrap) as (prefix, topics):
        env = {**intake_env(), "LADDER_TOPIC_PREFIX": prefix, "METRICS_REFRESH_INTERVAL_S": "300"}
        groups = {service: f"cycles-{service}-{run}" for service in SERVICES}
        for service in SERVICES:
            env[f"{service.upper()}_SCHEMA_NAME"] = schemas[service]
            env[f"{service.upper()}_CONSUMER_GROUP"] = groups[service]
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client_options())
        await producer.start()
        try:
            async with (
                TopicReader(bootstrap, topics.events) as events,
                in_process(create_intake, IntakeSettings, env) as (_, intake),
                in_process(create_router, RouterSettings, env) as (_, router),
                in_process(create_escalation, EscalationSettings, env) as (_, escalation),
                in_process(create_metrics, MetricsSettings, env) as (metrics_app, metrics),
            ):

                def history(ticket: str) -> list[ce.Envelope]:
                    return [ce.decode(r.key, r.value, r.headers) for r in events.with_key(ticket)]

                def routed(ticket: str) -> list[ce.Envelope]:
                    return [e for e in history(ticket) if isinstance(e.event, TicketRouted)]

                async def post(ticket: str, path: str, body: dict) -> None:
                    response = await intake.post(f"/v1/tickets/{ticket}/{path}", json=body, headers=HELPDESK)
                    assert response.status_code == 202, response.text

                async def routed_to(ticket: str, count: int) -> ce.Envelope:
                    await events.wait_for(lambda _: len(routed(ticket)) >= count, timeout=30)
                    return routed(ticket)[count - 1]

                async def observed() -> dict[str, str]:
                    await caught_up(bootstrap, topics.events, list(groups.values()))
                    ends = await events.consumer.end_offsets(list(events.consumer.assignment()))
                    while any([await events.consumer.position(tp) < end for tp, end in ends.items()]):
                        await events.poll(0.3)  # everything the services emitted, read
                    await metrics_app.state.refresher.refresh()
                    return {
                        "router": (await router.get("/metrics")).text,
                        "escalation": (await escalation.get("/metrics")).text,
                        "metrics": (await metrics.get("/metrics")).text,
                    }

                body = {"customer_id": "acme", "channel": "email", "subject": "SSO", "intent": "login"}
                response = await intake.post("/v1/tickets", json=body, headers=HELPDESK)
                assert response.status_code == 201, response.text
                ticket = response.json()["ticket_id"]
                assert (await routed_to(ticket, 1)).event.tier is Tier.L1
                await post(ticket, "escalations", handoff("L1", "L2"))  # cycle 1 visits L1 and L2
                assert (await routed_to(ticket, 2)).event.tier is Tier.L2
                await post(ticket, "resolution", {"tier": "L2", "agent_id": "gia", "resolution_code": "fixed"})
                await post(ticket, "reopen", {})
                reopened = await routed_to(ticket, 3)
                assert (reopened.event.tier, reopened.event.reason) == (Tier.L2, RoutingReason.REOPEN)
                before = await observed()
                history_before = history(ticket)
                # every service stamps the cycle: intake its own, router and escalation the cause's
                assert [(e.type, e.source, e.cycle) for e in history_before] == [
                    ("ticket.created", "ladder/intake", 1),
                    ("ticket.routed", "ladder/router", 1),
                    ("ticket.escalation_requested", "ladder/intake", 1),
                    ("ticket.escalated", "ladder/escalation", 1),
                    ("ticket.routed", "ladder/router", 1),
                    ("ticket.resolved", "ladder/intake", 1),
                    ("ticket.reopened", "ladder/intake", 2),
                    ("ticket.routed", "ladder/router", 2),
                ]

                # What the first cycle caused, landing after the reopen: escalation's L2 timer
                # fired before the resolution reached it, escalated to L3, and router routed it.
                first = history_before[0]
                at = datetime.now(UTC)
                breach = TicketSlaBreached(ticket_id=ticket, tier=Tier.L2, kind=SlaKind.TIME_IN_TIER, deadline=at)
                escalated = TicketEscalated(
                    ticket_id=ticket, from_tier=Tier.L2, to_tier=Tier.L3, reason=EscalationReason.SLA_BREACH
                )
                moved = TicketRouted(ticket_id=ticket, tier=Tier.L3, queue="l3-queue", reason=RoutingReason.ESCALATION)
                late_routed = ce.new_id()
                for event, source, event_id in (
                    (breach, "ladder/escalation", ce.new_id()),
                    (escalated, "ladder/escalation", ce.new_id()),
                    (moved, "ladder/router", late_routed),
                ):
                    record = ce.encode(
                        ce.Envelope(event, event_id, source, at, first.correlation_id, causation_id=first.id)
                    )
                    headers = [(n, v) for n, v in record.headers if n != "ce_cycle"] + [("ce_cycle", b"1")]
                    await producer.send_and_wait(topics.events, record.value, key=record.key, headers=headers)
                after = await observed()

                # router: the ticket stays at L2, nothing routed
                routed_now = [e.id for e in routed(ticket) if e.id != late_routed]
                assert routed_now == [e.id for e in history_before if isinstance(e.event, TicketRouted)]
                conn = await asyncpg.connect(platform.database_url)
                try:
                    tier = await conn.fetchval(
                        f"SELECT tier FROM {schemas['router']}.tickets WHERE ticket_id = $1", ticket
                    )
                    armed_in = await conn.fetch(
                        f"SELECT DISTINCT cycle FROM {schemas['escalation']}.sla_timers WHERE armed_by = $1",
                        reopened.id,
                    )
                    router_cycle = await conn.fetchval(
                        f"SELECT cycle FROM {schemas['router']}.tickets WHERE ticket_id = $1", ticket
                    )
                    late_timers = await conn.fetchval(
                        f"SELECT count(*) FROM {schemas['escalation']}.sla_timers WHERE armed_by = $1", late_routed
                    )
                    owner = await conn.fetchval(
                        f"SELECT owner FROM {schemas['escalation']}.tickets WHERE ticket_id = $1", ticket
                    )
                finally:
                    await conn.close()
                assert (tier, router_cycle, [row["cycle"] for row in armed_in]) == ("L2", 2, [2])
                # escalation: no visit at L3, no timer armed by the late routing
                assert (late_timers, owner) == (0, "L2")
                # every consumer counts what it read as stale: router the escalation,
                # escalation the routing, metrics all three
                for service, count in (("router", 1), ("escalation", 1), ("metrics", 3)):
                    assert ignored(after[service], "stale") - ignored(before[service], "stale") == count, service
                # metrics: the KPIs did not move, only the stale count
                kpis_before, kpis_after = kpi_series(before["metrics"]), kpi_series(after["metrics"])
                stale = ("support_events_ignored_total", frozenset({("reason", "stale")}))
                assert kpis_after.pop(stale) - kpis_before.pop(stale) == 3
                assert kpis_after == kpis_before
                # and the independent reference computation of the stream agrees, digit for digit
                stream = StreamCopy(bootstrap, topics.events)
                try:
                    computed_at = datetime.fromisoformat((await metrics.get("/v1/kpis")).json()["computed_at"])
                    truth = expected_samples(await stream.catch_up(), computed_at)
                finally:
                    await stream.close()
                assert differences(truth, exported_samples(after["metrics"])) == []
        finally:
            await producer.stop()
            await drop_schemas(platform.database_url, *schemas.values())
