"""Help-desk webhooks through the real services: intake (with the four shipped mappings),
router, escalation and metrics in this process, on private topics and schemas of the real
broker and database. Per vendor, a ticket lives its whole life as that help desk sends it
(signed as it signs); its history is the one a direct client's commands make, and the
exported KPIs equal the reference computation of the stream. A retried delivery changes
nothing; an unplaceable one is refused with its reason and dead-lettered once."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from services.escalation.main import create_app as create_escalation
from services.escalation.settings import EscalationSettings
from services.intake.core.helpdesks.mapping import VENDORS
from services.intake.core.tickets import external_ticket_id
from services.intake.main import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.metrics.main import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from services.router.main import create_app as create_router
from services.router.settings import RouterSettings
from shared import envelope as ce
from shared.charter import load_charter
from shared.db import drop_schemas
from simulator.compare import StreamCopy, differences, exported_samples
from simulator.driver import Driver, Run
from simulator.helpdesks import COMPLETE_HANDOFF, MAPPINGS, Delivery, Helpdesk, HelpdeskAgents
from simulator.plans import plan_tickets
from simulator.truth import Event, expected_samples
from tests.apps import in_process
from tests.integration.intake.conftest import intake_env
from tests.integration.test_cycles import caught_up
from tests.kafka_tools import TopicReader, private_topics

SERVICES = ("router", "escalation", "metrics")
SECRETS = {vendor: f"{vendor}-secret-{uuid.uuid4().hex}" for vendor in VENDORS}


@pytest.fixture(scope="module")
async def ladder(platform):
    bootstrap, run = platform.kafka_bootstrap_servers, uuid.uuid4().hex[:10]
    schemas = {service: f"{service}_wh_{run}" for service in SERVICES}
    async with private_topics(bootstrap) as (prefix, topics):
        env = {
            **intake_env(),
            "LADDER_TOPIC_PREFIX": prefix,
            "METRICS_REFRESH_INTERVAL_S": "300",
            "INTAKE_HELPDESKS_DIR": str(MAPPINGS),
            **{f"LADDER_{vendor.upper()}_SECRET": secret for vendor, secret in SECRETS.items()},
        }
        groups = {service: f"webhooks-{service}-{run}" for service in SERVICES}
        for service in SERVICES:
            env[f"{service.upper()}_SCHEMA_NAME"] = schemas[service]
            env[f"{service.upper()}_CONSUMER_GROUP"] = groups[service]
        try:
            async with (
                TopicReader(bootstrap, topics.events) as events,
                TopicReader(bootstrap, topics.dead_letter) as dead,
                in_process(create_intake, IntakeSettings, env) as (intake_app, intake),
                in_process(create_router, RouterSettings, env),
                in_process(create_escalation, EscalationSettings, env),
                in_process(create_metrics, MetricsSettings, env) as (metrics_app, metrics),
            ):
                yield {
                    "intake": intake,
                    "intake_app": intake_app,
                    "events": events,
                    "dead": dead,
                    "metrics": metrics,
                    "metrics_app": metrics_app,
                    "topics": topics,
                    "groups": list(groups.values()),
                    "bootstrap": bootstrap,
                }
        finally:
            await drop_schemas(platform.database_url, *schemas.values())


async def post(ladder, delivery: Delivery, status: int = 202):
    response = await ladder["intake"].post(delivery.path, content=delivery.body, headers=delivery.headers)
    assert response.status_code == status, response.text
    return response


def history(ladder, ticket: str) -> list[ce.Envelope]:
    return [ce.decode(r.key, r.value, r.headers) for r in ladder["events"].with_key(ticket)]


async def until(ladder, ticket: str, kind: str, count: int = 1) -> None:
    await ladder["events"].wait_for(lambda _: sum(e.type == kind for e in history(ladder, ticket)) >= count, 60)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_ticket_lives_its_life_through_the_help_desk_as_a_direct_clients_would(ladder, vendor):
    desk = Helpdesk(vendor, SECRETS[vendor])
    vendor_id = str(uuid.uuid4().int % 10**9)
    ticket = external_ticket_id(vendor, vendor_id)
    helpdesk_ticket, created = desk.create(vendor_id, intent="login")
    assert (await post(ladder, created)).json()["ticket_id"] == ticket
    await until(ladder, ticket, "ticket.routed")
    await post(ladder, desk.reply(helpdesk_ticket, "ana"))
    await post(ladder, desk.reply(helpdesk_ticket, "ana", public=False), status=200)  # a private note
    await post(ladder, desk.move(helpdesk_ticket, "L2", "ana", COMPLETE_HANDOFF))
    await until(ladder, ticket, "ticket.routed", 2)
    await post(ladder, desk.reply(helpdesk_ticket, "gia"))
    resolved = desk.resolve(helpdesk_ticket, "gia")
    first = (await post(ladder, resolved)).json()
    await post(ladder, desk.rate(helpdesk_ticket, 5))
    # the vendor retries the resolution (it saw a timeout): the same answer, nothing new
    again = await post(ladder, resolved)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first
    await until(ladder, ticket, "ticket.rated")

    assert [(e.type, e.source) for e in history(ladder, ticket)] == [
        ("ticket.created", "ladder/intake"),
        ("ticket.routed", "ladder/router"),
        ("ticket.responded", "ladder/intake"),
        ("ticket.escalation_requested", "ladder/intake"),
        ("ticket.escalated", "ladder/escalation"),
        ("ticket.routed", "ladder/router"),
        ("ticket.responded", "ladder/intake"),
        ("ticket.resolved", "ladder/intake"),
        ("ticket.rated", "ladder/intake"),
    ]
    escalated = next(e.event for e in history(ladder, ticket) if e.type == "ticket.escalated")
    assert (escalated.from_tier.value, escalated.to_tier.value, escalated.reason.value) == ("L1", "L2", "handoff")

    # the KPIs: what metrics exports equals the reference computation of the stream
    truth, _ = await kpis_equal_the_truth(ladder)
    assert truth[("support_resolutions_total", (("tier", "L2"),))] >= 1


async def kpis_equal_the_truth(ladder) -> tuple[dict, list[Event]]:
    """Once every service caught up: the KPIs metrics exports equal the reference computation
    of the whole stream (returned, with the stream)."""
    await caught_up(ladder["bootstrap"], ladder["topics"].events, ladder["groups"])
    await ladder["metrics_app"].state.refresher.refresh()
    exported = (await ladder["metrics"].get("/metrics")).text
    stream = StreamCopy(ladder["bootstrap"], ladder["topics"].events)
    try:
        computed_at = datetime.fromisoformat((await ladder["metrics"].get("/v1/kpis")).json()["computed_at"])
        events = await stream.catch_up()
        truth = expected_samples(events, computed_at)
    finally:
        await stream.close()
    assert differences(truth, exported_samples(exported)) == []
    return truth, events


@pytest.mark.parametrize("vendor", VENDORS)
async def test_simulate_via_the_help_desk_finishes_every_lifecycle_with_the_kpis_of_the_truth(ladder, vendor):
    """`ladder simulate --via <vendor>`'s driver, small: every persona the charter allows
    (handoffs clean and sloppy, jumps, returns, reopens, ratings) sent as the help desk sends it."""
    plans = plan_tickets(17, 30, load_charter(None), topic_share=0, lapse=False)
    driver = Driver(
        intake_url="http://app",
        api_key="unused: no topic command, no bad command",
        bootstrap=ladder["bootstrap"],
        topics=ladder["topics"],
        concurrency=10,
        via=HelpdeskAgents(Helpdesk(vendor, SECRETS[vendor])),
        bad_commands=False,
        transport=httpx.ASGITransport(app=ladder["intake_app"]),
    )
    run = await driver.run(Run(uuid.uuid4().hex[:10], plans))
    assert (len(run.done), run.stuck) == (len(plans), set())
    assert run.commands["webhook"] > len(plans) and run.commands["http"] == run.commands["topic"] == 0
    _, stream = await kpis_equal_the_truth(ladder)

    tickets = set(run.tickets.values())
    events = [e for e in stream if e.ticket in tickets]
    assert {e.type for e in events} >= {"ticket.escalated", "ticket.reopened", "ticket.rated", "ticket.resolved"}
    assert {e.body["reason"] for e in events if e.type == "ticket.bounced"} == {
        "handoff_incomplete",  # the sloppy handoffs
        "returned_with_fix",
    }
    created = [e for e in stream if e.ticket in tickets and e.type == "ticket.created"]
    await ladder["events"].wait_for(lambda records: {r.key.decode() for r in records} >= tickets, 30)
    clients = {history(ladder, e.ticket)[0].client for e in created}
    assert (len(created), clients) == (len(plans), {vendor})  # each connection is a client of its own


@pytest.mark.parametrize("vendor", VENDORS)
async def test_an_incomplete_handoff_from_the_help_desk_bounces_like_any_clients(ladder, vendor):
    desk = Helpdesk(vendor, SECRETS[vendor])
    vendor_id = str(uuid.uuid4().int % 10**9)
    ticket = external_ticket_id(vendor, vendor_id)
    helpdesk_ticket, created = desk.create(vendor_id, intent="login")
    await post(ladder, created)
    await until(ladder, ticket, "ticket.routed")
    await post(ladder, desk.move(helpdesk_ticket, "L2", "ana"))  # nothing filled in
    await until(ladder, ticket, "ticket.bounced")
    bounced = next(e.event for e in history(ladder, ticket) if e.type == "ticket.bounced")
    assert bounced.reason.value == "handoff_incomplete" and "hypothesis" in bounced.missing


async def test_an_unplaceable_delivery_is_refused_with_its_reason_and_dead_lettered_once(ladder):
    desk = Helpdesk("zendesk", SECRETS["zendesk"])
    helpdesk_ticket, created = desk.create(str(uuid.uuid4().int % 10**9))
    await post(ladder, created)
    desk.group_of["L2"] = "Billing Wizards"  # a group the mapping does not place
    unplaceable = desk.move(helpdesk_ticket, "L2", "ana", COMPLETE_HANDOFF)
    for _ in range(2):  # the vendor retries it: refused again, not dead-lettered again
        refused = (await post(ladder, unplaceable, status=422)).json()
        assert (
            refused["error"] == "unknown_group"
            and refused["detail"] == "unknown_group: group: not in the mapping's groups"
        )
    # a second, different unplaceable delivery: once its dead letter is in, the first's are all in
    sentinel = desk.sign(unplaceable.path, {"event": "merged", "ticket": {"id": "1"}})
    assert (await post(ladder, sentinel, status=422)).json()["error"] == "unknown_event"

    def letters() -> list[dict[str, bytes]]:
        return [dict(r.headers) for r in ladder["dead"].records]

    await ladder["dead"].wait_for(lambda _: any(h.get("dlq_code") == b"unknown_event" for h in letters()), 30)
    mine = [h for h in letters() if h.get("dlq_code") == b"unknown_group"]
    assert len(mine) == 1
    assert mine[0]["dlq_reason"] == b"unknown_group: group: not in the mapping's groups"
    assert mine[0]["ladder_webhook"] == b"zendesk/zendesk"
    assert "x-zendesk-webhook-signature" not in mine[0]  # never a signature or a secret
    body = next(r.value for r in ladder["dead"].records if dict(r.headers).get("dlq_code") == b"unknown_group")
    assert body == unplaceable.body  # the delivery, verbatim


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_forged_or_unsigned_delivery_is_refused_before_anything_happens(ladder, vendor):
    forger = Helpdesk(vendor, "not-the-secret-at-all")
    _, forged = forger.create("999")
    refused = (await post(ladder, forged, status=401)).json()
    assert refused["error"] == "unauthenticated"
    unsigned = Delivery(forged.path, {"Content-Type": "application/json"}, forged.body)
    assert (await post(ladder, unsigned, status=401)).json()["detail"].startswith("missing")
    unknown = Delivery(f"/v1/webhooks/{vendor}/nobody", forged.headers, forged.body)
    assert (await post(ladder, unknown, status=404)).json()["error"] == "not_found"
