"""The simulator's pure parts: plans are deterministic for a seed and follow the charter;
agents act on where a ticket really is; the reference KPIs of a small stream, by hand."""

from datetime import UTC, datetime, timedelta

from shared.charter import load_charter
from simulator.agents import Seen, react
from simulator.plans import TicketPlan, plan_tickets
from simulator.truth import Event, expected_samples

DEMO = load_charter("deploy/charter/demo.yaml")
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def plan(persona: str, **changes) -> TicketPlan:
    fields = dict(
        index=0,
        persona=persona,
        intent="login",
        priority="P3",
        blocked=False,
        channel="web",
        transport="http",
        return_fix=False,
        rating=None,
        reopen=False,
    )
    return TicketPlan(**{**fields, **changes})


def test_plans_are_deterministic_and_follow_the_charter():
    first, again = plan_tickets(7, 500, DEMO), plan_tickets(7, 500, DEMO)
    assert first == again != plan_tickets(8, 500, DEMO)
    routing = DEMO.routing
    for p in first:
        if p.persona == "jump":
            assert p.blocked and p.intent in routing.jump.intents
        elif p.persona == "l2_direct":
            assert p.intent in routing.straight_to_l2
        elif p.persona == "triage":
            assert p.intent not in {*routing.l1_owns, *routing.straight_to_l2, *routing.suspected_bugs}
    assert {p.persona for p in first} >= {"l1_fix", "handoff", "sloppy_handoff", "jump", "lapse", "bug", "triage"}
    assert not any(p.persona == "lapse" for p in plan_tickets(7, 500, DEMO, lapse=False))


def paths(actions):
    return [action.path for action in actions]


def test_agents_act_where_the_ticket_is():
    seen = Seen()
    handoff = plan("handoff")
    assert paths(react(handoff, seen, "ticket.routed", {"tier": "L1", "reason": "rule"})) == [
        "responses",
        "escalations",
    ]
    assert react(handoff, seen, "ticket.routed", {"tier": "L1", "reason": "assignment"}) == []  # same tier
    assert paths(react(handoff, seen, "ticket.routed", {"tier": "L2", "reason": "escalation"})) == [
        "responses",
        "resolution",
    ]

    lapse, seen = plan("lapse"), Seen()
    assert react(lapse, seen, "ticket.routed", {"tier": "L1", "reason": "rule"}) == []  # nobody picks it up
    assert paths(react(lapse, seen, "ticket.routed", {"tier": "L2", "reason": "escalation"})) == [
        "responses",
        "resolution",
    ]

    sloppy, seen = plan("sloppy_handoff"), Seen()
    react(sloppy, seen, "ticket.routed", {"tier": "L1", "reason": "rule"})
    bounce = {"reason": "handoff_incomplete", "to_tier": "L1", "from_tier": "L2"}
    (retry,) = react(sloppy, seen, "ticket.bounced", bounce)
    assert retry.body["hypothesis"] != "it's broken"
    assert react(sloppy, seen, "ticket.bounced", bounce) == []  # completed once, not forever


def test_the_customer_rates_and_comes_back_once():
    customer, seen = plan("l1_fix", rating=5, reopen=True), Seen()
    react(customer, seen, "ticket.routed", {"tier": "L1", "reason": "rule"})
    assert paths(react(customer, seen, "ticket.resolved", {})) == ["rating", "reopen"]
    assert paths(react(customer, seen, "ticket.routed", {"tier": "L1", "reason": "reopen"})) == [
        "responses",
        "resolution",
    ]
    assert react(customer, seen, "ticket.resolved", {}) == [] and seen.done


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_reference_kpis_of_a_small_stream():
    """Ticket a: L1 fixes it in 60 s, reopened, fixed again. Ticket b: escalated to L2, which
    resolves it 300 s after creation; its rating is 5. A duplicate and a stale breach."""
    events = [
        Event("a1", "ticket.created", "a", at(0), {}),
        Event("a2", "ticket.routed", "a", at(1), {"tier": "L1"}),
        Event("a3", "ticket.responded", "a", at(11), {"tier": "L1"}),
        Event("a4", "ticket.resolved", "a", at(60), {}),
        Event("a5", "ticket.sla_breached", "a", at(61), {"tier": "L1", "kind": "time_in_tier"}),  # stale
        Event("a6", "ticket.reopened", "a", at(100), {}),
        Event("a7", "ticket.routed", "a", at(101), {"tier": "L1"}),
        Event("a8", "ticket.resolved", "a", at(160), {}),
        Event("b1", "ticket.created", "b", at(0), {}),
        Event("b2", "ticket.routed", "b", at(2), {"tier": "L1"}),
        Event("b3", "ticket.escalation_requested", "b", at(20), {"from_tier": "L1"}),
        Event("b4", "ticket.escalated", "b", at(21), {"from_tier": "L1", "to_tier": "L2", "reason": "handoff"}),
        Event("b4", "ticket.escalated", "b", at(21), {"from_tier": "L1", "to_tier": "L2", "reason": "handoff"}),
        Event("b5", "ticket.routed", "b", at(22), {"tier": "L2"}),
        Event("b6", "ticket.resolved", "b", at(300), {}),
        Event("b7", "ticket.rated", "b", at(310), {"score": 5}),
    ]
    kpis = expected_samples(events, at(400))

    def get(name, **labels):
        return kpis.get((name, tuple(sorted(labels.items()))))

    assert get("support_tier_arrivals_total", tier="L1") == 3 and get("support_tier_arrivals_total", tier="L2") == 1
    # L1 visits: a's first (resolved, then reopened: no), a's second (yes), b's (ended by the move: no)
    assert get("support_first_contact_resolution_ratio", tier="L1", window="7d") == 1 / 3
    assert get("support_escalation_ratio", tier="L1", window="all") == 1 / 3
    assert get("support_reopen_ratio", tier="L1", window="all") == 1 / 2
    # a: 60 s, then 60 s after the reopen; nearest rank: the median of two is the first
    assert get("support_resolution_time_seconds", tier="L1", window="all", quantile="0.5") == 60.0
    assert get("support_resolution_time_seconds", tier="L2", window="all", quantile="0.9") == 300.0
    assert get("support_first_response_time_seconds", tier="L1", window="all", statistic="mean") == 10.0
    assert get("support_satisfaction_ratio", tier="L2", window="all") == 1.0
    assert get("support_satisfaction_ratio", tier="L1", window="all") is None  # no rating: absent, not 0
    assert get("support_resolved_without_escalation_ratio", window="all") == 1 / 2
    assert get("support_events_ignored_total", reason="duplicate") == 1
    assert get("support_events_ignored_total", reason="stale") == 1
    assert get("support_sla_breaches_total", tier="L1", kind="time_in_tier") == 0


def test_a_late_event_of_an_earlier_cycle_is_stale_in_the_reference_too():
    """The stream of the integration test (tests/integration/test_cycles.py): after the
    reopen, a breach, an escalation and a routing of cycle 1 land; all three are stale and
    no KPI but the stale count moves. A routing without a cycle is the current cycle's."""
    history = [
        Event("c1", "ticket.created", "c", at(0), {}, 1),
        Event("c2", "ticket.routed", "c", at(1), {"tier": "L1"}, 1),
        Event("c3", "ticket.escalation_requested", "c", at(5), {"from_tier": "L1"}, 1),
        Event("c4", "ticket.escalated", "c", at(6), {"from_tier": "L1", "to_tier": "L2", "reason": "handoff"}, 1),
        Event("c5", "ticket.routed", "c", at(7), {"tier": "L2"}, 1),
        Event("c6", "ticket.resolved", "c", at(60), {}, 1),
        Event("c7", "ticket.reopened", "c", at(100), {}, 2),
        Event("c8", "ticket.routed", "c", at(101), {"tier": "L2"}, 2),
    ]
    late = [
        Event("x1", "ticket.sla_breached", "c", at(102), {"tier": "L2", "kind": "time_in_tier"}, 1),
        Event("x2", "ticket.escalated", "c", at(102), {"from_tier": "L2", "to_tier": "L3", "reason": "sla_breach"}, 1),
        Event("x3", "ticket.routed", "c", at(102), {"tier": "L3"}, 1),
    ]
    before, after = expected_samples(history, at(200)), expected_samples(history + late, at(200))
    stale = ("support_events_ignored_total", (("reason", "stale"),))
    assert after.pop(stale) - before.pop(stale) == 3
    assert after == before
    unknown = expected_samples([*history, Event("x4", "ticket.routed", "c", at(103), {"tier": "L3"})], at(200))
    assert unknown[("support_tier_arrivals_total", (("tier", "L3"),))] == 1
