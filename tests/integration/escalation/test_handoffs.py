"""Handoffs and the return path on the real broker and database, driven through intake's
HTTP API: a complete handoff escalates, an incomplete one bounces with exactly what is
missing, a fix returns to L1, an allowed jump is accepted and a forbidden one bounced."""

from shared.events import BounceReason, EscalationReason, RoutingReason, TicketBounced, TicketEscalated, Tier
from tests.integration.escalation.conftest import COMPLETE, handoff


async def test_a_complete_handoff_escalates_and_the_fix_comes_back_to_l1(desk):
    ticket = await desk.create()
    await desk.route(ticket, Tier.L1)
    request = await desk.post(ticket, "escalations", handoff("L1", "L2"))
    (escalated,) = await desk.answers(ticket, 1)
    assert escalated.event == TicketEscalated(
        ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.HANDOFF
    )
    created = desk.decode(desk.events.with_key(ticket)[0])
    assert (escalated.causation_id, escalated.correlation_id) == (request, created.id)

    await desk.route(ticket, Tier.L2, RoutingReason.ESCALATION)  # router moves the ticket
    again = await desk.post(ticket, "escalations", handoff("L1", "L2"))  # L1 no longer owns it
    await desk.post(ticket, "returns", {"from_tier": "L3", "agent_id": "kofi", "fix_summary": "not mine"})  # ignored
    await desk.post(ticket, "returns", {"from_tier": "L2", "agent_id": "gia", "fix_summary": "rotated the SAML cert"})
    _, not_owner, returned = await desk.answers(ticket, 3)
    assert not_owner.causation_id == again and not_owner.event.missing == ["owner"]
    assert returned.event == TicketBounced(
        ticket_id=ticket,
        from_tier=Tier.L2,
        to_tier=Tier.L1,
        reason=BounceReason.RETURNED_WITH_FIX,
        fix_summary="rotated the SAML cert",
    )
    await desk.events.settle(1.0)
    assert len(desk.escalations(ticket)) == 3  # the return from L3, which does not own it, got no answer
    metrics = (await desk.escalation.client.get("/metrics")).text
    assert 'support_consumer_events_ignored_total{reason="tier_claim_mismatch"} 1.0' in metrics
    assert 'support_escalation_handoffs_total{verdict="returned"}' in metrics


async def test_an_incomplete_handoff_bounces_with_exactly_what_is_missing(desk):
    ticket = await desk.create()
    await desk.route(ticket, Tier.L1)
    checklist = {**COMPLETE, "attachments": [], "problem_statement": "   "}
    await desk.post(ticket, "escalations", handoff("L1", "L2", checklist=checklist, hypothesis="It's broken!!"))
    (bounced,) = await desk.answers(ticket, 1)
    assert bounced.event == TicketBounced(
        ticket_id=ticket,
        from_tier=Tier.L2,
        to_tier=Tier.L1,
        reason=BounceReason.HANDOFF_INCOMPLETE,
        missing=["attachments", "problem_statement", "hypothesis"],
    )
    # L1 completes it (router did not move the ticket): now it goes up
    await desk.post(ticket, "escalations", handoff("L1", "L2"))
    _, escalated = await desk.answers(ticket, 2)
    assert escalated.event.reason is EscalationReason.HANDOFF


async def test_a_blocked_customer_may_jump_to_l3_and_nobody_else(desk):
    blocked = await desk.create(intent="outage", customer_blocked=True, priority="P1")
    calm = await desk.create(intent="outage", customer_blocked=False, priority="P1")
    for ticket in (blocked, calm):
        await desk.route(ticket, Tier.L1)
        await desk.post(ticket, "escalations", handoff("L1", "L3"))
    (jumped,) = await desk.answers(blocked, 1)
    (refused,) = await desk.answers(calm, 1)
    assert jumped.event == TicketEscalated(
        ticket_id=blocked, from_tier=Tier.L1, to_tier=Tier.L3, reason=EscalationReason.JUMP
    )
    assert refused.event == TicketBounced(
        ticket_id=calm,
        from_tier=Tier.L3,
        to_tier=Tier.L1,
        reason=BounceReason.HANDOFF_INCOMPLETE,
        missing=["skip_level"],
    )
