"""What each event makes of a ticket: the effective owner, visits and their timers, the
answers to handoff and return requests, and a batch folded in stream order
(services/escalation/core/tickets.py, invariants 1-5)."""

from datetime import timedelta

from services.escalation.core.sla import TimerState
from services.escalation.core.tickets import BOTH, Ignored, Verdict, Visit, apply_events, decide
from shared.envelope import derive_id
from shared.events import (
    BounceReason,
    EscalationReason,
    HandoffChecklist,
    Priority,
    RoutingReason,
    SlaKind,
    TicketBounced,
    TicketEscalated,
    Tier,
)
from tests.unit.escalation.builders import (
    DEFAULT,
    T0,
    berlin,
    created,
    requested,
    resolved,
    responded,
    returned,
    routed,
)

FR, TIT = SlaKind.FIRST_RESPONSE, SlaKind.TIME_IN_TIER


def run(*events, charter=DEFAULT, ticket=None):
    """Decide `events` one by one; the decisions, and the ticket after them."""
    decisions = []
    for event in events:
        decision = decide(charter, ticket, event, T0)
        decisions.append(decision)
        ticket = decision.ticket
    return decisions, ticket


def test_a_routing_starts_a_visit_and_arms_its_timers_in_working_hours():
    route = routed(Tier.L1, at=berlin(2026, 6, 1, 21, 30))  # L1 works 06:00-22:00; P2: 1h first response, 4h in tier
    (_, decision), ticket = run(created(priority=Priority.P2), route)
    assert ticket.owner is Tier.L1 and ticket.visit == Visit(Tier.L1, route.id)
    assert decision.cancel == BOTH  # whatever the previous visit left
    assert {t.kind: t.due_at for t in decision.arm} == {FR: berlin(2026, 6, 2, 6, 30), TIT: berlin(2026, 6, 2, 9, 30)}
    assert all(t.armed_by == route.id and t.tier is Tier.L1 and t.state is TimerState.PENDING for t in decision.arm)


def test_a_reassignment_in_the_same_tier_changes_no_timer():
    (*_, again), ticket = run(created(), routed(Tier.L1), routed(Tier.L1, reason=RoutingReason.ASSIGNMENT))
    assert again.arm == () and again.cancel == ()
    assert ticket.visit.tier is Tier.L1


def test_a_response_by_the_owner_or_the_communication_owner_cancels_first_response():
    (*_, by_owner), _ = run(created(), routed(Tier.L1), responded(Tier.L1))
    assert by_owner.cancel == (FR,)
    (*_, by_other), _ = run(created(), routed(Tier.L1), responded(Tier.L2))
    assert by_other.cancel == ()
    jump = routed(Tier.L3, reason=RoutingReason.JUMP, communication_owner=Tier.L1)
    (*_, by_communicator), ticket = run(created(intent="outage", blocked=True), jump, responded(Tier.L1))
    assert by_communicator.cancel == (FR,) and ticket.owner is Tier.L3


def test_a_complete_handoff_escalates_and_the_ticket_moves_at_once():
    request = requested(Tier.L1, Tier.L2)
    (*_, decision), ticket = run(created(), routed(Tier.L1), request)
    (answer,) = decision.emit
    assert answer.event == TicketEscalated(
        ticket_id="t-1", from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.HANDOFF
    )
    assert answer.id == derive_id(request.id, "ticket.escalated")
    assert (answer.causation_id, answer.correlation_id, answer.source) == (
        request.id,
        request.correlation_id,
        "ladder/escalation",
    )
    assert decision.verdict is Verdict.ESCALATED and decision.cancel == BOTH
    assert ticket.owner is Tier.L2  # router will follow; meanwhile L1 no longer owns it
    assert ticket.visit.tier is Tier.L1  # the L2 visit starts with router's ticket.routed
    (again,), _ = run(requested(Tier.L1, Tier.L2), ticket=ticket)
    assert again.emit[0].event.missing == ["owner"]


def test_an_incomplete_handoff_bounces_and_nothing_moves():
    request = requested(Tier.L1, Tier.L2, checklist=HandoffChecklist(impact="all of EU"), hypothesis="it's broken")
    (*_, decision), ticket = run(created(), routed(Tier.L1), request)
    assert decision.emit[0].event == TicketBounced(
        ticket_id="t-1",
        from_tier=Tier.L2,
        to_tier=Tier.L1,
        reason=BounceReason.HANDOFF_INCOMPLETE,
        missing=["steps_attempted", "attachments", "problem_statement", "hypothesis"],
    )
    assert decision.verdict is Verdict.BOUNCED and decision.cancel == ()
    assert ticket.owner is Tier.L1


def test_the_next_visit_after_an_escalation_arms_the_new_tiers_timers():
    move = routed(Tier.L2, reason=RoutingReason.ESCALATION, at=berlin(2026, 6, 5, 17, 0))  # Friday 17:00
    (*_, decision), ticket = run(created(), routed(Tier.L1), requested(Tier.L1, Tier.L2), move)
    assert ticket.visit == Visit(Tier.L2, move.id) and decision.cancel == BOTH
    # L2 works Mon-Fri 08:00-18:00: P2 first response 2h, time in tier 1d (24 working hours)
    assert {t.kind: t.due_at for t in decision.arm} == {FR: berlin(2026, 6, 8, 9, 0), TIT: berlin(2026, 6, 10, 11, 0)}


def test_return_with_a_fix_goes_to_l1():
    request = returned(Tier.L2, fix="cleared the template cache")
    (*_, decision), ticket = run(created(), routed(Tier.L2), request)
    assert decision.emit[0].event == TicketBounced(
        ticket_id="t-1",
        from_tier=Tier.L2,
        to_tier=Tier.L1,
        reason=BounceReason.RETURNED_WITH_FIX,
        fix_summary="cleared the template cache",
    )
    assert decision.emit[0].id == derive_id(request.id, "ticket.bounced")
    assert ticket.owner is Tier.L1 and decision.cancel == BOTH and decision.verdict is Verdict.RETURNED
    (*_, home), _ = run(created(), routed(Tier.L1), returned(Tier.L1))
    assert home.emit == () and home.ignored is Ignored.NO_RETURN_PATH


def test_a_resolution_ends_the_visit_and_a_reopen_starts_a_new_cycle():
    (*_, resolution), ticket = run(created(), routed(Tier.L2, at=berlin(2026, 6, 1, 9, 0)), resolved(Tier.L2))
    assert resolution.cancel == BOTH and ticket.visit is None and ticket.owner is None
    # reopened on Saturday, router sends it back to L2: a new cycle, counted from Monday 08:00
    back = routed(Tier.L2, reason=RoutingReason.REOPEN, at=berlin(2026, 6, 6, 10, 0))
    (again,), ticket = run(back, ticket=ticket)
    assert ticket.visit == Visit(Tier.L2, back.id)
    assert {t.kind: t.due_at for t in again.arm} == {FR: berlin(2026, 6, 8, 10, 0), TIT: berlin(2026, 6, 10, 12, 0)}


def test_a_batch_keeps_stream_order_between_arming_and_cancelling():
    first, second = routed(Tier.L1), routed(Tier.L2)
    changes = apply_events(
        DEFAULT,
        {},
        [
            created(),
            first,
            responded(Tier.L1),
            requested(Tier.L1, Tier.L2),
            second,
            created("t-2"),
            routed(Tier.L1, "t-2"),
        ],
        T0,
    )
    states = {(t.ticket_id, t.armed_by == second.id, t.kind): t.state for t in changes.timers.values()}
    assert states[("t-1", False, FR)] is TimerState.CANCELLED  # responded
    assert states[("t-1", False, TIT)] is TimerState.CANCELLED  # escalated
    assert states[("t-1", True, FR)] is states[("t-1", True, TIT)] is TimerState.PENDING  # the L2 visit
    assert states[("t-2", False, FR)] is TimerState.PENDING
    assert ("t-1", FR) in changes.cancels  # timers stored before the batch are cancelled too
    assert changes.tickets["t-1"].visit == Visit(Tier.L2, second.id)
    assert [e.type for e in changes.emit] == ["ticket.escalated"] and changes.verdicts == {"escalated": 1}


def test_a_rerun_emits_the_same_ids():
    events = [created(), routed(Tier.L1), requested(Tier.L1, Tier.L2, hypothesis=None), returned(Tier.L1)]
    first, second = (apply_events(DEFAULT, {}, events, T0 + timedelta(minutes=n)) for n in (0, 5))
    assert [e.id for e in first.emit] == [e.id for e in second.emit]
    assert first.ignored == {"no_return_path": 1}
