"""One scenario per rule of the shipped charter, driven through intake's real HTTP API, on the
real broker and database. escalation is not here: its events are published as it would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import envelope as ce
from shared.events import BounceReason, EscalationReason, TicketBounced, TicketEscalated, Tier
from tests.integration.router.conftest import Clock, stack, summary
from tests.kafka_tools import TopicReader

# Tuesday 2026-11-24, 10:30 in Berlin: L1's early shift (ana, ben, chloe), L2's business
# hours (ines and jonas wear the hat today) and L3's engineering hours; not L3's office hours.
TUESDAY = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
async def floor(platform):
    async with stack(platform, None, Clock(TUESDAY)) as running:
        yield running


async def test_an_l1_intent_stays_at_l1(floor):
    ticket = await floor.create(intent="password_reset")
    (routed,) = await floor.wait_routed(ticket)
    assert summary(routed)[:2] == ("L1", "l1-general") and summary(routed)[3:] == ("rule", None)
    assert routed.event.assignee in {"ana", "ben", "chloe"}
    assert routed.causation_id == routed.correlation_id == floor.correlation[ticket]
    assert routed.source == "ladder/router"


async def test_an_l2_intent_goes_straight_to_l2_and_parallel_own_keeps_l1_talking(floor):
    straight, parallel = await floor.create(intent="api_errors"), await floor.create(intent="performance")
    (first,) = await floor.wait_routed(straight)
    (second,) = await floor.wait_routed(parallel)
    assert summary(first)[:2] == ("L2", "l2-investigations") and summary(first)[3:] == ("rule", None)
    assert summary(second)[:2] == ("L2", "l2-investigations") and summary(second)[3:] == ("rule", "L1")
    assert {first.event.assignee, second.event.assignee} == {"ines", "jonas"}  # today's L2 hats


async def test_a_blocked_customer_jumps_to_l3_with_l1_as_communication_owner(floor):
    ticket = await floor.create(intent="data_loss", customer_blocked=True)
    (routed,) = await floor.wait_routed(ticket)
    assert summary(routed)[:2] == ("L3", "l3-engineering") and summary(routed)[3:] == ("jump", "L1")
    assert routed.event.assignee in {"kofi", "lena"}  # at once, outside office hours


async def test_escalated_then_returned_with_a_fix_goes_back_to_its_earlier_tier(floor):
    ticket = await floor.create(intent="billing")
    (placed,) = await floor.wait_routed(ticket)
    await floor.publish(
        TicketEscalated(ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.HANDOFF)
    )
    up = (await floor.wait_routed(ticket, 2))[1]
    assert summary(up)[:2] == ("L2", "l2-investigations") and summary(up)[3] == "escalation"
    await floor.publish(
        TicketBounced(
            ticket_id=ticket,
            from_tier=Tier.L2,
            to_tier=Tier.L1,
            reason=BounceReason.HANDOFF_INCOMPLETE,
            missing=["impact"],
        )
    )
    await floor.publish(
        TicketBounced(
            ticket_id=ticket,
            from_tier=Tier.L2,
            to_tier=Tier.L1,
            reason=BounceReason.RETURNED_WITH_FIX,
            fix_summary="cleared the cache",
        )
    )
    routed = await floor.wait_routed(ticket, 3)
    await floor.events.settle(1.0)
    assert len(floor.routed(ticket)) == 3  # the incomplete handoff moved nothing
    assert summary(routed[2])[:2] == ("L1", "l1-billing") and summary(routed[2])[3:] == ("bounce", None)
    assert routed[2].event.assignee in {"ana", "ben", "chloe"}
    assert placed.event.tier is Tier.L1


async def test_a_duplicated_event_changes_nothing_and_emits_nothing(floor):
    ticket = await floor.create(intent="login")
    await floor.wait_routed(ticket)
    escalation = TicketEscalated(ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.HANDOFF)
    event_id = ce.new_id()
    for _ in range(3):  # republished: the same id at three positions
        await floor.publish(escalation, event_id)
    await floor.wait_routed(ticket, 2)
    await floor.events.settle(1.5)
    assert [summary(r)[3] for r in floor.routed(ticket)] == ["rule", "escalation"]


async def test_reopened_goes_back_to_the_resolving_tier(floor):
    ticket = await floor.create(intent="data_loss")
    (placed,) = await floor.wait_routed(ticket)
    await floor.command(
        ticket, "resolution", {"tier": "L2", "agent_id": placed.event.assignee, "resolution_code": "restored"}
    )
    await floor.command(ticket, "reopen", {})
    reopened = (await floor.wait_routed(ticket, 2))[1]
    assert summary(reopened)[:2] == ("L2", "l2-investigations") and summary(reopened)[3] == "reopen"
    assert reopened.event.assignee in {"ines", "jonas"}


async def test_suspected_bugs_wait_in_the_shadow_queue_and_unknown_intents_go_to_triage(floor):
    bug, unknown = await floor.create(intent="crash"), await floor.create(intent="refund_fraud")
    (shadowed,) = await floor.wait_routed(bug)
    (triaged,) = await floor.wait_routed(unknown)
    assert summary(shadowed) == ("L3", "l3-suspected-bugs", None, "rule", None)
    assert summary(triaged)[:2] == ("L1", "l1-triage") and triaged.event.assignee is not None


async def test_l3_takes_ordinary_work_when_office_hours_open(floor):
    ticket = await floor.create(intent="integration_failure")
    await floor.wait_routed(ticket)
    await floor.publish(
        TicketEscalated(ticket_id=ticket, from_tier=Tier.L2, to_tier=Tier.L3, reason=EscalationReason.HANDOFF)
    )
    escalated = (await floor.wait_routed(ticket, 2))[1]
    assert summary(escalated) == ("L3", "l3-engineering", None, "escalation", None)  # waits for office hours
    floor.clock.now = TUESDAY + timedelta(hours=22, minutes=50)  # Wednesday 09:20 in Berlin
    assigned = (await floor.wait_routed(ticket, 3))[2]  # the periodic pass
    assert summary(assigned)[:2] == ("L3", "l3-engineering") and summary(assigned)[3] == "assignment"
    assert assigned.event.assignee in {"kofi", "lena"} and assigned.causation_id == escalated.id
    floor.clock.now = TUESDAY

    metrics = (await floor.router.get("/metrics")).text
    assert 'support_router_routed_total{reason="assignment",tier="L3"} 1.0' in metrics
    assert 'support_router_queued_tickets{queue="l3-suspected-bugs",tier="L3"} 1.0' in metrics
    assert (await floor.router.get("/readyz")).status_code == 200


async def test_an_escalation_forged_by_another_source_is_dead_lettered_and_its_neighbours_applied(floor, platform):
    ticket = await floor.create(intent="billing")
    await floor.wait_routed(ticket)
    up = TicketEscalated(ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.HANDOFF)
    jump = TicketEscalated(ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L3, reason=EscalationReason.JUMP)
    async with TopicReader(platform.kafka_bootstrap_servers, floor.topics.dead_letter) as dead_letters:
        await floor.publish(jump, source="ladder/intake")  # intake may not escalate
        await floor.publish(jump, source="mallory")  # nor may anyone outside Ladder
        await floor.publish(up)  # escalation's own, after them on the ticket's partition
        routed = await floor.wait_routed(ticket, 2)
        dead = await dead_letters.wait_for(lambda _: len(dead_letters.with_key(ticket)) >= 2)
        await floor.events.settle(1.0)
    assert summary(floor.routed(ticket)[1])[:2] == ("L2", "l2-investigations") and len(floor.routed(ticket)) == 2
    assert routed[1].causation_id not in {ce.decode(r.key, r.value, r.headers).id for r in dead}
    headers = [{k: v.decode() for k, v in r.headers if k.startswith("dlq_")} for r in dead]
    assert [(h["dlq_code"], h["dlq_service"], h["dlq_reason"]) for h in headers] == [
        (
            "source_not_allowed",
            "router",
            "ticket.escalated is emitted by ladder/escalation only; ce_source is ladder/intake",
        ),
        (
            "source_not_allowed",
            "router",
            "ticket.escalated is emitted by ladder/escalation only; ce_source is not a Ladder service",
        ),
    ]
