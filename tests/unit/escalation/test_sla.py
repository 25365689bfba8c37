"""fire_due: what a due timer emits, when a breach escalates, and that only the current
visit's timers fire (services/escalation/core/sla.py, invariants 1-4)."""

from datetime import timedelta

from services.escalation.core.sla import SlaTimer, TimerState, arm_visit, breach_id, fire_due
from services.escalation.core.tickets import Ticket, Visit
from shared.charter import BreachAction
from shared.envelope import derive_id
from shared.events import EscalationReason, Priority, SlaKind, TicketEscalated, TicketSlaBreached, Tier
from tests.unit.escalation.builders import ALWAYS, DEFAULT, T0, berlin

FR, TIT = SlaKind.FIRST_RESPONSE, SlaKind.TIME_IN_TIER


def at_tier(tier: Tier, started_by: str = "routed-1", owner: Tier | None = None) -> Ticket:
    return Ticket("t-1", "corr-1", Priority.P2, "login", False, owner or tier, Visit(tier, started_by))


def timers(ticket: Ticket, charter=ALWAYS) -> list[SlaTimer]:
    return arm_visit(charter, ticket, ticket.visit.tier, ticket.visit.started_by, T0)


def test_a_visit_arms_both_timers_in_its_tiers_hours():
    armed = {t.kind: t for t in timers(at_tier(Tier.L2), DEFAULT)}  # Monday 14:00 Berlin; P2: 2h / 1d
    assert armed[FR].due_at == T0 + timedelta(hours=2)
    assert armed[TIT].due_at == T0 + timedelta(days=2, hours=4)  # 4h Monday, 10h Tuesday, 10h Wednesday
    assert {t.key for t in armed.values()} == {("routed-1", FR, Tier.L2), ("routed-1", TIT, Tier.L2)}
    assert arm_visit(DEFAULT, at_tier(Tier.L4), Tier.L4, "r", T0) == []  # a tier not in use has no targets


def test_first_response_alerts_and_the_visit_goes_on():
    ticket = at_tier(Tier.L1)
    pending = timers(ticket)
    firing = fire_due(ALWAYS, ticket, pending, T0 + timedelta(minutes=5))  # P2 at L1: 5m / 10m
    (breach,) = firing.emit
    assert breach.event == TicketSlaBreached(ticket_id="t-1", tier=Tier.L1, kind=FR, deadline=pending[0].due_at)
    assert breach.id == derive_id("routed-1", "ticket.sla_breached/first_response") == breach_id(pending[0])
    assert (breach.causation_id, breach.correlation_id, breach.source) == ("routed-1", "corr-1", "ladder/escalation")
    assert breach.time == T0 + timedelta(minutes=5)
    assert [(t.kind, t.state) for t in firing.settled] == [(FR, TimerState.FIRED)]  # time in tier still runs
    assert firing.owner is None


def test_time_in_tier_escalates_to_the_tier_above_and_cancels_the_rest():
    ticket = at_tier(Tier.L1)
    firing = fire_due(
        ALWAYS,
        ticket,
        [t for t in timers(ticket) if t.kind is TIT]
        + [SlaTimer("t-1", FR, Tier.L1, T0 + timedelta(hours=1), "routed-1")],
        T0 + timedelta(minutes=10),
    )
    breach, escalation = firing.emit
    assert escalation.event == TicketEscalated(
        ticket_id="t-1", from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.SLA_BREACH
    )
    assert escalation.id == derive_id(breach.id, "ticket.escalated") and escalation.causation_id == breach.id
    assert [(t.kind, t.state) for t in firing.settled] == [(TIT, TimerState.FIRED), (FR, TimerState.CANCELLED)]
    assert firing.owner is Tier.L2


def test_both_due_fire_in_deadline_order():
    ticket = at_tier(Tier.L1)
    firing = fire_due(ALWAYS, ticket, list(reversed(timers(ticket))), T0 + timedelta(hours=1))
    assert [(e.type, getattr(e.event, "kind", None)) for e in firing.emit] == [
        ("ticket.sla_breached", FR),
        ("ticket.sla_breached", TIT),
        ("ticket.escalated", None),
    ]


def test_an_escalating_first_response_leaves_no_time_in_tier_breach():
    l1 = ALWAYS.tiers[Tier.L1]
    strict = ALWAYS.model_copy(
        update={
            "tiers": {
                **ALWAYS.tiers,
                Tier.L1: l1.model_copy(
                    update={"on_breach": l1.on_breach.model_copy(update={"first_response": BreachAction.ESCALATE})}
                ),
            }
        }
    )
    ticket = at_tier(Tier.L1)
    firing = fire_due(strict, ticket, timers(ticket), T0 + timedelta(hours=1))
    assert [e.type for e in firing.emit] == ["ticket.sla_breached", "ticket.escalated"]
    assert [(t.kind, t.state) for t in firing.settled] == [(FR, TimerState.FIRED), (TIT, TimerState.CANCELLED)]


def test_the_top_of_the_ladder_only_alerts():
    ticket = at_tier(Tier.L3)
    firing = fire_due(ALWAYS, ticket, timers(ticket), T0 + timedelta(days=1))
    assert [e.type for e in firing.emit] == ["ticket.sla_breached", "ticket.sla_breached"] and firing.owner is None
    top = ALWAYS.tiers[Tier.L3]  # even a charter that says "escalate" has nowhere to go
    eager = ALWAYS.model_copy(
        update={
            "tiers": {
                **ALWAYS.tiers,
                Tier.L3: top.model_copy(
                    update={"on_breach": top.on_breach.model_copy(update={"time_in_tier": BreachAction.ESCALATE})}
                ),
            }
        }
    )
    assert [e.type for e in fire_due(eager, ticket, timers(ticket), T0 + timedelta(days=1)).emit] == [
        "ticket.sla_breached",
        "ticket.sla_breached",
    ]


def test_only_the_current_visit_at_its_own_tier_fires():
    late = T0 + timedelta(days=1)
    for ticket in (
        at_tier(Tier.L2, "routed-2"),  # visited another tier since
        at_tier(Tier.L1, owner=Tier.L2),  # escalated, router not there yet
        Ticket("t-1", "corr-1", Priority.P2, "login", False),
    ):  # resolved
        firing = fire_due(ALWAYS, ticket, timers(at_tier(Tier.L1)), late)
        assert firing.emit == [] and {t.state for t in firing.settled} == {TimerState.CANCELLED}


def test_not_yet_due_waits_and_settled_stays_settled():
    ticket = at_tier(Tier.L1)
    assert fire_due(ALWAYS, ticket, timers(ticket), T0 + timedelta(minutes=4)).settled == []
    fired = timers(ticket)[0].settle(TimerState.FIRED)
    assert fired.settle(TimerState.CANCELLED) is fired and fired.settle(TimerState.FIRED) is fired


def test_a_tier_the_charter_no_longer_declares_only_alerts():
    ticket = at_tier(Tier.L2)
    pending = timers(ticket)
    fewer = ALWAYS.model_copy(update={"tiers": {t: s for t, s in ALWAYS.tiers.items() if t is not Tier.L2}})
    firing = fire_due(fewer, ticket, pending, T0 + timedelta(days=1))  # armed before a restart on a new charter
    assert [e.type for e in firing.emit] == ["ticket.sla_breached", "ticket.sla_breached"] and firing.owner is None


def test_what_a_timer_fires_carries_the_cycle_it_was_armed_in():
    """A breach (and the escalation it causes) belongs to the cycle of the routing that armed
    the timer, however late it fires: after a reopen every consumer finds it stale."""
    ticket = at_tier(Tier.L1)
    pending = arm_visit(ALWAYS, ticket, Tier.L1, "routed-1", T0, cycle=2)
    assert {t.cycle for t in pending} == {2}
    firing = fire_due(ALWAYS, ticket, pending, T0 + timedelta(minutes=10))
    assert [(e.type, e.cycle) for e in firing.emit] == [
        ("ticket.sla_breached", 2),
        ("ticket.sla_breached", 2),
        ("ticket.escalated", 2),
    ]


# --- the communication owner's own timer (invariant 5) ----------------------------------


def jumped(started_by: str = "routed-1") -> Ticket:
    """A blocked customer's crash jumped to L3 while L1 keeps the customer updated."""
    return Ticket("t-1", "corr-1", Priority.P1, "crash", True, Tier.L3, Visit(Tier.L3, started_by), Tier.L1)


SATURDAY = berlin(2026, 6, 6, 10, 0)  # L1 works 06-22 every day; L3 (engineering) Monday 09:00


def test_a_saturday_jump_to_l3_gets_l1s_fifteen_minute_update_deadline():
    armed = {(t.tier, t.kind): t for t in arm_visit(DEFAULT, jumped(), Tier.L3, "routed-1", SATURDAY)}
    assert armed[(Tier.L1, FR)].due_at == SATURDAY + timedelta(minutes=15)
    assert armed[(Tier.L3, FR)].due_at == berlin(2026, 6, 8, 10, 0)  # L3's 1h from Monday 09:00
    assert (Tier.L1, TIT) not in armed  # the communication owner owns nothing to keep in tier


def test_the_communication_owners_breach_alerts_and_the_owner_keeps_the_ticket():
    ticket = jumped()
    pending = arm_visit(DEFAULT, ticket, Tier.L3, "routed-1", SATURDAY)
    firing = fire_due(DEFAULT, ticket, pending, SATURDAY + timedelta(minutes=15))
    (breach,) = firing.emit
    assert breach.event == TicketSlaBreached(
        ticket_id="t-1", tier=Tier.L1, kind=FR, deadline=SATURDAY + timedelta(minutes=15)
    )
    assert breach.id == derive_id("routed-1", "ticket.sla_breached/first_response/L1")
    assert breach.id != breach_id(next(t for t in pending if t.tier is Tier.L3 and t.kind is FR))
    assert [(t.tier, t.state) for t in firing.settled] == [(Tier.L1, TimerState.FIRED)]
    assert firing.owner is None


def test_the_communication_owners_timer_is_cancelled_once_the_visit_moves_on():
    ticket = jumped()
    pending = [t for t in arm_visit(DEFAULT, ticket, Tier.L3, "routed-1", SATURDAY) if t.tier is Tier.L1]
    moved = jumped("routed-2")  # a later visit (e.g. a bounce and a new jump)
    firing = fire_due(DEFAULT, moved, pending, SATURDAY + timedelta(hours=1))
    assert firing.emit == [] and [t.state for t in firing.settled] == [TimerState.CANCELLED]


def test_a_charter_without_communication_sla_arms_the_owner_only():
    jump = DEFAULT.routing.jump
    quiet = DEFAULT.model_copy(
        update={
            "routing": DEFAULT.routing.model_copy(update={"jump": jump.model_copy(update={"communication_sla": False})})
        }
    )
    assert {t.tier for t in arm_visit(quiet, jumped(), Tier.L3, "routed-1", SATURDAY)} == {Tier.L3}


def test_parallel_own_gives_l1_its_timer_while_l2_investigates():
    ticket = Ticket("t-1", "corr-1", Priority.P2, "performance", False, Tier.L2, Visit(Tier.L2, "r"), Tier.L1)
    monday = berlin(2026, 6, 1, 10, 0)
    armed = {(t.tier, t.kind): t.due_at for t in arm_visit(DEFAULT, ticket, Tier.L2, "r", monday)}
    assert armed[(Tier.L1, FR)] == monday + timedelta(hours=1)  # L1's P2 first response
    assert armed[(Tier.L2, FR)] == monday + timedelta(hours=2)
