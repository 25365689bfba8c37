"""Placements, moves, freed capacity and assignments through the handler and the periodic
pass (services/router/core/dispatch.py invariants 1-6), on the in-memory store."""

from __future__ import annotations

from datetime import timedelta

import yaml

from services.router.core.assignment import Seat
from shared.charter import DEFAULT_PATH, load_charter, parse_charter
from shared.envelope import derive_id
from shared.events import BounceReason, EscalationReason, Priority, Tier
from tests.unit.router.builders import TINY, TUESDAY, Events
from tests.unit.router.harness import Harness, summary

CHARTER = load_charter()
WEDNESDAY_OFFICE_HOURS = TUESDAY + timedelta(hours=22, minutes=50)  # 09:20 in Berlin
L1, L2, L3 = Tier.L1, Tier.L2, Tier.L3


def test_l1_intents_go_round_robin_over_the_early_shift():
    floor, ev = Harness(CHARTER, TUESDAY), Events()
    routed = floor.apply(*(ev.created(f"t{i}") for i in range(4)))
    assert [summary(r) for r in routed] == [
        (f"t{i}", "L1", "l1-general", agent, "rule", None) for i, agent in enumerate(["ana", "ben", "chloe", "ana"])
    ]
    assert floor.db.seats[(L1, "ana")] == Seat(2, 4)


def test_a_blocked_customer_jumps_to_l3_at_once_with_l1_keeping_the_customer_updated():
    floor, ev = Harness(CHARTER, TUESDAY), Events()  # 10:30 in Berlin: outside L3's office hours
    (routed,) = floor.apply(ev.created("t", "api_errors", blocked=True))
    assert summary(routed) == ("t", "L3", "l3-engineering", "kofi", "jump", "L1")


def test_escalated_then_returned_with_a_fix_goes_back_to_the_earlier_tier():
    floor, ev = Harness(CHARTER, TUESDAY), Events()
    floor.apply(ev.created("t"))
    (up,) = floor.apply(ev.escalated("t", L1, L2))
    assert summary(up) == ("t", "L2", "l2-investigations", "ines", "escalation", None)
    assert floor.db.seats[(L1, "ana")].open == 0  # the L1 agent is free again
    (down,) = floor.apply(ev.bounced("t", L2, L1))
    assert summary(down) == ("t", "L1", "l1-general", "ben", "bounce", None)  # ana had the last turn
    assert floor.db.seats[(L2, "ines")].open == 0


def test_an_incomplete_handoff_never_happened_and_odd_moves_change_nothing():
    floor, ev = Harness(CHARTER, TUESDAY), Events()
    floor.apply(ev.created("t"))
    before = floor.ticket("t")
    assert floor.apply(ev.bounced("t", L2, L1, BounceReason.HANDOFF_INCOMPLETE)) == []
    assert floor.apply(ev.escalated("t", L1, L1)) == [] and floor.ignored == {"same_tier": 1}
    assert floor.apply(ev.escalated("t", L1, Tier.L4)) == [] and floor.ignored == {"tier_not_in_use": 1}
    assert floor.ticket("t") == before


def test_a_reopened_ticket_goes_back_to_the_tier_that_resolved_it():
    floor, ev = Harness(CHARTER, TUESDAY), Events()
    floor.apply(ev.created("t", "billing"), ev.escalated("t", L1, L2))
    assert floor.apply(ev.resolved("t", tier=L1)) == []  # the owner resolved it, whatever the client said
    assert (floor.ticket("t").tier, floor.ticket("t").resolved, floor.db.seats[(L2, "ines")].open) == (L2, True, 0)
    (again,) = floor.apply(ev.reopened("t"))
    assert summary(again) == ("t", "L2", "l2-investigations", "jonas", "reopen", None)  # round-robin
    (back,) = floor.apply(ev.bounced("t", L2, L1))
    assert summary(back)[2] == "l1-billing"  # the intent's own queue, at its own tier


def test_reopen_to_a_declared_tier():
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["routing"]["reopen_to"] = "L1"
    floor, ev = Harness(parse_charter(yaml.safe_dump(data)), TUESDAY), Events()
    floor.apply(ev.created("t", "data_loss"), ev.resolved("t", tier=L2))
    (again,) = floor.apply(ev.reopened("t"))
    assert summary(again)[1:5] == ("L1", "l1-general", "ana", "reopen")


def test_capacity_full_then_freed_assigns_the_oldest_waiting_ticket_priority_first():
    floor, ev = Harness(load_charter(TINY), TUESDAY), Events()  # L1: ana alone, two open tickets at most
    routed = floor.apply(ev.created("a"), ev.created("b"), ev.created("c"), ev.created("d"))
    assert [r.event.assignee for r in routed] == ["ana", "ana", None, None]
    (urgent,) = floor.apply(ev.created("p1", priority=Priority.P1))
    assert urgent.event.assignee is None  # urgent, but nobody has room
    (first,) = floor.apply(ev.resolved("a"))
    assert summary(first) == ("p1", "L1", "l1-general", "ana", "assignment", None)
    assert first.id == derive_id(urgent.id, "assignment") and first.causation_id == urgent.id
    assert first.correlation_id == urgent.correlation_id
    moved, second = floor.apply(ev.escalated("b", L1, L2))
    assert summary(moved) == ("b", "L2", "l2-investigations", "gia", "escalation", None)
    assert summary(second) == ("c", "L1", "l1-general", "ana", "assignment", None)  # the oldest P3
    assert floor.db.seats[(L1, "ana")].open == 2


def test_l3_takes_ordinary_work_in_office_hours_and_urgent_work_at_once():
    floor, ev = Harness(CHARTER, TUESDAY), Events()
    floor.apply(ev.created("slow", "data_loss"), ev.created("fast", "data_loss", Priority.P1))
    escalations = floor.apply(ev.escalated("slow", L2, L3), ev.escalated("fast", L2, L3))
    assert [summary(r)[3] for r in escalations] == [None, "kofi"]
    assert floor.tick() == []  # 10:30: still outside office hours
    floor.now = WEDNESDAY_OFFICE_HOURS  # Wednesday 09:20 in Berlin
    (assigned,) = floor.tick()
    assert summary(assigned) == ("slow", "L3", "l3-engineering", "lena", "assignment", None)
    assert floor.tick() == []  # idempotent: nothing waits any more


def test_suspected_bugs_wait_in_the_shadow_queue_for_l3_to_batch_them():
    floor, ev = Harness(CHARTER, WEDNESDAY_OFFICE_HOURS), Events()
    (bug,) = floor.apply(ev.created("bug", "crash"))
    assert summary(bug) == ("bug", "L3", "l3-suspected-bugs", None, "rule", None)
    assert floor.tick() == [] and floor.ticket("bug").assignee is None


def test_a_jumps_communication_owner_stays_only_while_below_the_owner():
    floor, ev = Harness(CHARTER, TUESDAY), Events()
    floor.apply(ev.created("t", "data_loss", blocked=True))
    (down,) = floor.apply(ev.bounced("t", L3, L2))
    assert summary(down)[1::4] == ("L2", "L1")  # L1 still talks to the customer
    (home,) = floor.apply(ev.bounced("t", L2, L1))
    assert summary(home)[5] is None  # L1 owns it and talks itself
    (jumped,) = floor.apply(ev.escalated("t", L1, L3, EscalationReason.JUMP))
    assert summary(jumped)[1:] == ("L3", "l3-engineering", "lena", "escalation", "L1")  # kofi had the last turn


def test_ids_derive_from_causes_so_a_rerun_emits_the_same_ids():
    ev = Events()
    batch = [ev.created("t", "data_loss"), ev.escalated("t", L2, L3), ev.created("u", "crash", Priority.P1)]
    first = [r.id for r in Harness(CHARTER, TUESDAY).apply(*batch)]
    assert first == [r.id for r in Harness(CHARTER, TUESDAY).apply(*batch)]
    assert first == [derive_id(e.id, "routed") for e in batch]
    routed = Harness(CHARTER, TUESDAY).apply(*batch)
    assert [(r.causation_id, r.correlation_id, r.source) for r in routed] == [
        (e.id, e.correlation_id, "ladder/router") for e in batch
    ]
