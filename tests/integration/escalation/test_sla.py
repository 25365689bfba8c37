"""SLA timers on the real broker and database: escalation's clock is moved past the
(24x7, minutes-long) targets instead of waiting for them. A breach escalates once; a
response before the deadline cancels the first-response timer; a timer of a visit the
ticket left never fires."""

from datetime import timedelta

from shared.events import EscalationReason, RoutingReason, SlaKind, TicketEscalated, Tier
from tests.integration.escalation.conftest import handoff

# escalation-24x7.yaml, P2 at L1: first response 5 min, time in tier 10 min (alert, escalate)


async def test_a_breach_escalates_once(desk):
    ticket = await desk.create(priority="P2")
    routed = await desk.route(ticket, Tier.L1)
    await desk.escalation.timers(ticket, first_response="pending", time_in_tier="pending")
    await desk.escalation.advance(timedelta(minutes=11))
    first, second, escalated = await desk.answers(ticket, 3)
    assert [(e.type, getattr(e.event, "kind", None)) for e in (first, second)] == [
        ("ticket.sla_breached", SlaKind.FIRST_RESPONSE),
        ("ticket.sla_breached", SlaKind.TIME_IN_TIER),
    ]
    assert first.causation_id == second.causation_id == routed
    assert second.event.deadline - first.event.deadline == timedelta(minutes=5)
    assert escalated.event == TicketEscalated(
        ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.SLA_BREACH
    )
    assert escalated.causation_id == second.id

    # Later passes, a late handoff request from L1 (it no longer owns the ticket) and more
    # time change nothing: each timer fired once, the ticket was escalated once.
    await desk.post(ticket, "escalations", handoff("L1", "L2"))
    await desk.escalation.advance(timedelta(hours=1))
    *_, bounced = await desk.answers(ticket, 4)
    assert bounced.event.missing == ["owner"]
    await desk.events.settle(1.5)
    assert len(desk.escalations(ticket)) == 4
    metrics = (await desk.escalation.client.get("/metrics")).text
    assert 'support_escalation_sla_timers_fired_total{kind="time_in_tier",tier="L1"}' in metrics


async def test_a_response_before_the_deadline_cancels_first_response(desk):
    answered, silent = await desk.create(priority="P2"), await desk.create(priority="P2")
    for ticket in (answered, silent):
        await desk.route(ticket, Tier.L1)
    await desk.post(answered, "responses", {"tier": "L1", "agent_id": "ana"})
    await desk.escalation.timers(answered, first_response="cancelled", time_in_tier="pending")
    await desk.escalation.timers(silent, first_response="pending", time_in_tier="pending")
    await desk.escalation.advance(timedelta(minutes=6))  # past first response, not yet time in tier
    (breach,) = await desk.answers(silent, 1)
    assert breach.event.kind is SlaKind.FIRST_RESPONSE
    await desk.events.settle(1.0)
    assert desk.escalations(answered) == []


async def test_a_move_cancels_the_timers_of_the_visit_it_left(desk):
    ticket = await desk.create(priority="P2")
    await desk.route(ticket, Tier.L1)
    await desk.post(ticket, "escalations", handoff("L1", "L2"))
    (escalated,) = await desk.answers(ticket, 1)
    assert escalated.event.reason is EscalationReason.HANDOFF
    await desk.escalation.timers(ticket, first_response="cancelled", time_in_tier="cancelled")
    await desk.escalation.advance(timedelta(minutes=15))  # past L1's targets: nothing, L1 handed it up
    await desk.events.settle(1.5)
    assert len(desk.escalations(ticket)) == 1
    routed = await desk.route(ticket, Tier.L2)  # L2's visit: P2 first response 10 min
    await desk.escalation.timers(ticket, first_response="pending", time_in_tier="pending")
    await desk.escalation.advance(timedelta(minutes=11))
    _, breach = await desk.answers(ticket, 2)
    assert (breach.event.tier, breach.event.kind, breach.causation_id) == (Tier.L2, SlaKind.FIRST_RESPONSE, routed)


async def test_the_communication_owner_gets_its_own_deadline_and_breach(desk):
    # A blocked customer's api_errors jumped to L3 (P1: L3 first response 30 min) while L1 keeps
    # the customer updated: L1's own P1 first response (5 min) applies and is breached alone.
    ticket = await desk.create(priority="P1", intent="api_errors", customer_blocked=True)
    routed = await desk.route(ticket, Tier.L3, RoutingReason.JUMP, communication_owner=Tier.L1)
    await desk.escalation.timers(ticket, first_response="pending", time_in_tier="pending")
    async with desk.escalation.app.state.runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT tier, kind, due_at - min(due_at) OVER () AS after FROM {desk.escalation.schema}.sla_timers "
            "WHERE ticket_id = $1 ORDER BY due_at",
            ticket,
        )
    assert [(r["tier"], r["kind"], r["after"]) for r in rows] == [
        ("L1", "first_response", timedelta(0)),
        ("L3", "first_response", timedelta(minutes=25)),
        ("L3", "time_in_tier", timedelta(minutes=115)),
    ]
    await desk.escalation.advance(timedelta(minutes=6))
    (breach,) = await desk.answers(ticket, 1)
    assert (breach.event.tier, breach.event.kind, breach.causation_id) == (Tier.L1, SlaKind.FIRST_RESPONSE, routed)
    await desk.escalation.timers(ticket, first_response="pending", time_in_tier="pending")  # L3's still run
    await desk.events.settle(1.0)
    assert len(desk.escalations(ticket)) == 1  # an alert: the communication owner escalates nothing
