"""The read API against the stream: real CloudEvents on a private topic, through the metrics
service on the real broker and database (services/metrics/core/read_model.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer

from shared import envelope as ce
from shared.emitters import emitter
from shared.events import Priority, RoutingReason, TicketRouted, Tier
from shared.kafka import client_options
from tests.builders import ticket_created
from tests.integration.intake.conftest import HELPDESK, KEY_CONFIG, LEAD
from tests.integration.metrics.conftest import running_metrics
from tests.unit.metrics.stories import Story

BERLIN = ZoneInfo("Europe/Berlin")
SATURDAY = datetime(2026, 6, 6, 10, 0, tzinfo=BERLIN)


def jumped(ticket: str) -> Story:
    """A blocked customer's crash, jumped to L3 on a Saturday while L1 keeps them updated."""
    story = Story(ticket, SATURDAY)
    story.events[0] = ce.Envelope(
        event=ticket_created(ticket, SATURDAY, intent="crash", priority=Priority.P1, blocked=True, subject="secret"),
        id=f"{ticket}/0",
        source=emitter("ticket.created"),
        time=SATURDAY,
        correlation_id=f"{ticket}/0",
    )
    return story.add(
        0.1,
        TicketRouted(
            ticket_id=ticket,
            tier=Tier.L3,
            queue="l3-engineering",
            assignee="kofi",
            reason=RoutingReason.JUMP,
            communication_owner=Tier.L1,
        ),
    )


async def until(probe, timeout: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_a_tickets_state_timeline_and_queues_from_the_stream(private, unique):
    ticket = f"rt-{unique}"
    story = jumped(ticket)
    producer = AIOKafkaProducer(bootstrap_servers=private.bootstrap, **client_options())
    await producer.start()
    try:
        async with running_metrics(private.env(METRICS_API_KEYS=KEY_CONFIG)) as (_, client):
            await private.publish(producer, story.events)

            async def state():
                response = await client.get(f"/v1/tickets/{ticket}", headers=LEAD)
                return response.json() if response.status_code == 200 and response.json()["owner"]["tier"] else None

            now = await until(state)
            assert now["owner"] == {"tier": "L3", "queue": "l3-engineering", "agent": "kofi"}
            assert (now["communication_owner"], now["owners"], now["status"]) == ("L1", ["L3", "L1"], "open")
            deadlines = {(d["tier"], d["kind"]): d["due_at"] for d in now["open_deadlines"]}
            start = SATURDAY + timedelta(minutes=0.1)
            assert deadlines[("L1", "first_response")] == ce.format_time(start + timedelta(minutes=15))
            assert deadlines[("L3", "first_response")] == ce.format_time(datetime(2026, 6, 8, 10, 0, tzinfo=BERLIN))
            assert set(deadlines) == {("L1", "first_response"), ("L3", "first_response"), ("L3", "time_in_tier")}

            # L1 updates the customer: both first responses are settled, L3's time in tier runs on.
            story.responded(5, "L1").breached(20, "L1")
            await private.publish(producer, story.events[2:])

            async def timeline():
                response = await client.get(f"/v1/tickets/{ticket}/timeline", headers=LEAD)
                events = response.json()["events"]
                return events if len(events) == 4 else None

            events = await until(timeline)
            assert [e["type"] for e in events] == [
                "ticket.created",
                "ticket.routed",
                "ticket.responded",
                "ticket.sla_breached",
            ]
            assert [(e["who"], e["why"]) for e in events[1:3]] == [("kofi", "jump"), ("ann", None)]
            assert events[1]["source"] == "ladder/router" and events[1]["caused_by"] is None
            assert "subject" not in events[0]["fields"]  # no customer text in the read model
            now = (await client.get(f"/v1/tickets/{ticket}", headers=LEAD)).json()
            assert [(d["tier"], d["kind"]) for d in now["open_deadlines"]] == [("L3", "time_in_tier")]

            # Per ticket needs a read key; aggregates do not.
            assert (await client.get(f"/v1/tickets/{ticket}")).status_code == 401
            assert (await client.get(f"/v1/tickets/{ticket}", headers=HELPDESK)).status_code == 403
            assert (await client.get(f"/v1/tickets?q={ticket[:6]}", headers=LEAD)).json()["tickets"] == [ticket]
            queues = (await client.get("/v1/queues")).json()
            (mine,) = [q for q in queues["queues"] if q["queue"] == "l3-engineering"]
            assert mine["backlog"] == 1 and mine["oldest_age_seconds"] > 0
            assert set(queues["on_duty"]) == {"L1", "L2", "L3"}
    finally:
        await producer.stop()


async def test_a_read_key_sees_only_its_clients_tickets_unless_granted_all(private, unique):
    """Scoped like writes (issue 16): a ticket remembers its creating client (ce_client of
    ticket.created); another client's ticket is unknown to an `own` key, everywhere."""
    from dataclasses import replace

    from services.intake.core.auth import hash_key
    from tests.integration.metrics.test_weekly_report import W45, handed_up

    keys = json.dumps(
        {
            "keys": [
                {"name": "helpdesk", "sha256": hash_key("it-helpdesk-reads"), "actions": ["read"]},
                {"name": "lead", "sha256": hash_key("it-lead-reads"), "actions": ["read"], "tickets": "all"},
            ]
        }
    )
    own, everyone = {"Authorization": "Bearer it-helpdesk-reads"}, {"Authorization": "Bearer it-lead-reads"}
    mine, theirs, nobodys = f"sc-{unique}-mine", f"sc-{unique}-theirs", f"sc-{unique}-nobody"
    stories = [
        (handed_up(mine, 70, "the IdP cache keeps the old signing key"), "helpdesk"),
        (handed_up(theirs, 30, "the session cookie is set for the wrong domain"), "chatbot"),
        (Story(nobodys, W45).routed(1, "L1"), None),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=private.bootstrap, **client_options())
    await producer.start()
    try:
        async with running_metrics(private.env(METRICS_API_KEYS=keys)) as (_, client):
            await private.publish(producer, [replace(e, client=c) for story, c in stories for e in story.events])
            await private.consumed()
            for ticket in (theirs, nobodys):
                assert (await client.get(f"/v1/tickets/{ticket}", headers=own)).status_code == 404
                assert (await client.get(f"/v1/tickets/{ticket}/timeline", headers=own)).status_code == 404
                assert (await client.get(f"/v1/tickets/{ticket}", headers=everyone)).status_code == 200
            assert (await client.get(f"/v1/tickets/{mine}/timeline", headers=own)).status_code == 200
            search = f"/v1/tickets?q=sc-{unique}"
            assert (await client.get(search, headers=own)).json()["tickets"] == [mine]
            assert (await client.get(search, headers=everyone)).json()["tickets"] == sorted([mine, theirs, nobodys])
            examples = "/v1/handoffs/examples?week=2026-W45"
            chosen = [e["ticket_id"] for e in (await client.get(examples, headers=own)).json()["examples"]]
            assert chosen == [mine]
            chosen = [e["ticket_id"] for e in (await client.get(examples, headers=everyone)).json()["examples"]]
            assert chosen == [theirs, mine]  # theirs was resolved sooner after its request
    finally:
        await producer.stop()
