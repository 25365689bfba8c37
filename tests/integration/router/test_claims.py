"""Batch claims out of L3's shadow queue through intake's API and the commands topic, on the
real broker and database (services/router/core/dispatch.py, invariant 7)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import asyncpg
import pytest

from shared.events import TicketClaimRequested
from tests.integration.intake.conftest import HELPDESK, signed
from tests.integration.router.conftest import Clock, stack

TUESDAY = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # L3 at work (kofi, lena), outside its office hours


@pytest.fixture(scope="module")
async def floor(platform):
    async with stack(platform, None, Clock(TUESDAY)) as running:
        yield running


async def suspected_bugs(floor, count: int) -> list[str]:
    tickets = [await floor.create(intent="crash", priority="P3") for _ in range(count)]
    for ticket in tickets:
        (routed,) = await floor.wait_routed(ticket)
        assert (routed.event.queue, routed.event.assignee) == ("l3-suspected-bugs", None)
    return tickets


async def test_a_batch_claimed_twice_at_once_leaves_the_shadow_queue_once(floor, platform):
    tickets = await suspected_bugs(floor, 3)

    async def claim(agent: str):
        body = {"tier": "L3", "agent_id": agent, "ticket_ids": tickets}
        return await floor.intake.post("/v1/claims", headers=HELPDESK, json=body)

    first, second = await asyncio.gather(claim("kofi"), claim("lena"))
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    assert [c["status"] for c in first.json()["claims"] + second.json()["claims"]] == [202] * 6
    for ticket in tickets:
        _, claimed = await floor.wait_routed(ticket, 2)
        assert (claimed.event.reason.value, claimed.event.queue) == ("claim", "l3-engineering")
        assert claimed.event.assignee in {"kofi", "lena"}
    await floor.events.settle(1.5)
    for ticket in tickets:
        requests = [r for r in floor.events.with_key(ticket) if dict(r.headers)["ce_type"] == b"ticket.claim_requested"]
        assert len(requests) == 2 and len(floor.routed(ticket)) == 2  # two claims, one move
    conn = await asyncpg.connect(platform.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT shadow, queue FROM {floor.schema}.tickets WHERE ticket_id = ANY($1::text[])", tickets
        )
    finally:
        await conn.close()
    assert {(r["shadow"], r["queue"]) for r in rows} == {(False, "l3-engineering")}


async def test_a_claim_on_the_commands_topic_and_the_claim_on_the_stream(floor):
    (ticket,) = await suspected_bugs(floor, 1)
    command = {"type": "claim_ticket", "ticket_id": ticket, "tier": "L3", "agent_id": "kofi", "batch_id": "b-7"}
    value = json.dumps(command).encode()
    await floor.producer.send_and_wait(
        floor.topics.commands, value, key=ticket.encode(), headers=signed(ticket.encode(), value)
    )
    _, claimed = await floor.wait_routed(ticket, 2)
    assert (claimed.event.assignee, claimed.event.reason.value) == ("kofi", "claim")
    request = next(
        r for r in floor.events.with_key(ticket) if dict(r.headers)["ce_type"] == TicketClaimRequested.TYPE.encode()
    )
    assert (
        json.loads(request.value)["batch_id"] == "b-7"
        and claimed.causation_id == dict(request.headers)["ce_id"].decode()
    )


async def test_a_claim_by_a_tier_the_charter_does_not_let_claim_moves_nothing(floor):
    (ticket,) = await suspected_bugs(floor, 1)
    response = await floor.intake.post(
        "/v1/claims", headers=HELPDESK, json={"tier": "L1", "agent_id": "ana", "ticket_ids": [ticket]}
    )
    assert response.status_code == 202
    await floor.events.settle(1.5)
    assert len(floor.routed(ticket)) == 1
