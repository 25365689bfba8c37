"""Tier claims on the real broker and database (issue 16): intake, router, escalation and
metrics in this process on private topics and schemas. The chatbot answers its own ticket,
which L1 owns, claiming to be L2. Every consumer judges that claim by the same rule
(`shared.lifecycle` invariant 5): router does not move the ticket, escalation cancels no
first-response timer, metrics counts no first response, and escalation and metrics count
the claim `tier_claim_mismatch`; the reference computation of the stream agrees. Then L1
answers and all of that happens."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

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
from shared.events import TicketRouted, Tier
from simulator.compare import StreamCopy, differences, exported_samples
from simulator.truth import expected_samples
from tests.apps import in_process
from tests.integration.intake.conftest import CHATBOT, intake_env
from tests.integration.metrics.conftest import kpi_series
from tests.integration.test_cycles import caught_up, ignored
from tests.kafka_tools import TopicReader, private_topics

SERVICES = ("router", "escalation", "metrics")
MISMATCH = "tier_claim_mismatch"


async def test_a_response_claiming_a_tier_that_does_not_own_the_ticket_counts_nowhere(platform):
    bootstrap, run = platform.kafka_bootstrap_servers, uuid.uuid4().hex[:10]
    schemas = {service: f"{service}_tc_{run}" for service in SERVICES}
    async with private_topics(bootstrap) as (prefix, topics):
        env = {**intake_env(), "LADDER_TOPIC_PREFIX": prefix, "METRICS_REFRESH_INTERVAL_S": "300"}
        groups = {service: f"claims-{service}-{run}" for service in SERVICES}
        for service in SERVICES:
            env[f"{service.upper()}_SCHEMA_NAME"] = schemas[service]
            env[f"{service.upper()}_CONSUMER_GROUP"] = groups[service]
        try:
            async with (
                TopicReader(bootstrap, topics.events) as events,
                in_process(create_intake, IntakeSettings, env) as (_, intake),
                in_process(create_router, RouterSettings, env) as (_, router),
                in_process(create_escalation, EscalationSettings, env) as (_, escalation),
                in_process(create_metrics, MetricsSettings, env) as (metrics_app, metrics),
            ):

                def routed(ticket: str) -> list[ce.Envelope]:
                    decoded = [ce.decode(r.key, r.value, r.headers) for r in events.with_key(ticket)]
                    return [e for e in decoded if isinstance(e.event, TicketRouted)]

                async def observed() -> dict[str, str]:
                    await caught_up(bootstrap, topics.events, list(groups.values()))
                    await metrics_app.state.refresher.refresh()
                    return {
                        "router": (await router.get("/metrics")).text,
                        "escalation": (await escalation.get("/metrics")).text,
                        "metrics": (await metrics.get("/metrics")).text,
                    }

                async def first_response_timer(ticket: str) -> str:
                    conn = await asyncpg.connect(platform.database_url)
                    try:
                        return await conn.fetchval(
                            f"SELECT state FROM {schemas['escalation']}.sla_timers "
                            "WHERE ticket_id = $1 AND kind = 'first_response'",
                            ticket,
                        )
                    finally:
                        await conn.close()

                async def respond(ticket: str, tier: str) -> None:
                    body = {"tier": tier, "agent_id": "chatbot"}
                    response = await intake.post(f"/v1/tickets/{ticket}/responses", json=body, headers=CHATBOT)
                    assert response.status_code == 202, response.text

                body = {"customer_id": "acme", "channel": "chat", "subject": "SSO", "intent": "login"}
                response = await intake.post("/v1/tickets", json=body, headers=CHATBOT)
                assert response.status_code == 201, response.text
                ticket = response.json()["ticket_id"]
                await events.wait_for(lambda _: len(routed(ticket)) >= 1, timeout=30)
                assert routed(ticket)[0].event.tier is Tier.L1
                before = await observed()

                await respond(ticket, "L2")  # the chatbot claims L2 on L1's ticket
                claimed = await observed()
                assert len(routed(ticket)) == 1  # router: the ticket stays where it is
                assert await first_response_timer(ticket) == "pending"  # escalation: no timer cancelled
                for service, count in (("router", 0), ("escalation", 1)):
                    assert ignored(claimed[service], MISMATCH) - ignored(before[service], MISMATCH) == count, service
                kpis_before, kpis_claimed = kpi_series(before["metrics"]), kpi_series(claimed["metrics"])
                counted = ("support_events_ignored_total", frozenset({("reason", MISMATCH)}))
                assert kpis_claimed.pop(counted) - kpis_before.pop(counted, 0.0) == 1
                assert kpis_claimed == kpis_before  # metrics: no first response, at L2 or anywhere

                await respond(ticket, "L1")  # the owner answers: now the claim fits
                answered = await observed()
                assert await first_response_timer(ticket) == "cancelled"
                kpis = kpi_series(answered["metrics"])
                mean = ("support_first_response_time_seconds", frozenset({("tier", "L1"), ("window", "all")}))
                assert any(key[0] == mean[0] and mean[1] <= key[1] for key in kpis), "L1's first response counted"
                assert not any(key[0] == mean[0] and ("tier", "L2") in key[1] for key in kpis), (
                    "no L2 first response counted"
                )
                assert ignored(answered["escalation"], MISMATCH) == ignored(claimed["escalation"], MISMATCH)

                # the independent reference computation of the stream agrees, digit for digit
                stream = StreamCopy(bootstrap, topics.events)
                try:
                    computed_at = datetime.fromisoformat((await metrics.get("/v1/kpis")).json()["computed_at"])
                    truth = expected_samples(await stream.catch_up(), computed_at)
                finally:
                    await stream.close()
                assert differences(truth, exported_samples(answered["metrics"])) == []
        finally:
            await drop_schemas(platform.database_url, *schemas.values())
