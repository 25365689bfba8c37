"""Placement rules (services/router/core/routing.py invariants 1-7) on the shipped charter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.core.routing import declared, place, route_ticket
from shared.charter import load_charter
from shared.events import RANK, Priority, RoutingReason, Tier

CHARTER = load_charter()
ROUTING = CHARTER.routing
INTENTS = st.from_regex(r"[a-z0-9_.-]{1,20}", fullmatch=True)
PRIORITIES = st.sampled_from(list(Priority))


@pytest.mark.parametrize(
    ("intent", "priority", "blocked", "tier", "queue", "reason", "owner"),
    [
        ("login", "P3", False, "L1", "l1-general", "rule", None),  # L1 owns it
        ("login", "P1", True, "L1", "l1-general", "rule", None),  # blocked, but not a slow-diagnostics intent
        ("billing", "P3", False, "L1", "l1-billing", "rule", None),  # an intent queue
        ("data_loss", "P2", False, "L2", "l2-investigations", "rule", None),  # straight to L2
        ("security_incident", "P2", False, "L2", "l2-security", "rule", None),
        ("performance", "P3", False, "L2", "l2-investigations", "rule", "L1"),  # parallel-own
        ("data_loss", "P3", True, "L3", "l3-engineering", "jump", "L1"),  # the jump
        ("outage", "P3", True, "L3", "l3-engineering", "jump", "L1"),  # a jump intent nobody else declares
        ("outage", "P3", False, "L1", "l1-triage", "rule", None),  # ... which, unblocked, is undeclared
        ("crash", "P3", False, "L3", "l3-suspected-bugs", "rule", None),  # the shadow queue
        ("crash", "P1", False, "L3", "l3-engineering", "rule", None),  # urgent work is not batched
        ("crash", "P4", True, "L3", "l3-engineering", "jump", "L1"),
        ("refund_fraud", "P3", False, "L1", "l1-triage", "rule", None),  # the fallback
    ],
)
def test_each_rule_of_the_shipped_charter(intent, priority, blocked, tier, queue, reason, owner):
    placement = route_ticket(CHARTER, intent, Priority(priority), blocked)
    assert (placement.tier, placement.queue, placement.reason, placement.communication_owner) == (
        Tier(tier),
        queue,
        RoutingReason(reason),
        Tier(owner) if owner else None,
    )
    assert placement.shadow == (queue == "l3-suspected-bugs")
    assert placement.urgent == (priority == "P1" or reason == "jump")


@given(INTENTS.filter(lambda i: not declared(ROUTING, i)), PRIORITIES, st.booleans())
def test_unknown_intents_go_to_the_fallback(intent, priority, blocked):
    placement = route_ticket(CHARTER, intent, priority, blocked)
    if blocked and intent in ROUTING.jump.intents:
        assert placement.reason is RoutingReason.JUMP
    else:
        assert (placement.tier, placement.queue) == (ROUTING.fallback.tier, ROUTING.fallback.queue)


@given(st.sampled_from(ROUTING.jump.intents), PRIORITIES)
def test_a_jump_keeps_l1_as_communication_owner(intent, priority):
    placement = route_ticket(CHARTER, intent, priority, customer_blocked=True)
    assert (placement.tier, placement.reason, placement.communication_owner) == (Tier.L3, RoutingReason.JUMP, Tier.L1)
    assert placement.urgent and not placement.shadow


@given(
    INTENTS | st.sampled_from(ROUTING.l1_owns + ROUTING.straight_to_l2 + ROUTING.suspected_bugs),
    PRIORITIES,
    st.sampled_from(CHARTER.ladder),
    st.sampled_from(list(RoutingReason)),
    st.none() | st.sampled_from(list(Tier)),
    st.booleans(),
)
def test_every_placement_is_one_queue_of_its_tier_and_owners_stay_below(intent, priority, tier, reason, owner, jump):
    placement = place(CHARTER, intent, priority, tier, reason, owner, jump=jump)
    spec = CHARTER.tiers[tier]
    assert placement.tier is tier
    allowed = {spec.queue, spec.shadow_queue, ROUTING.queues.get(intent), ROUTING.fallback.queue}
    assert placement.queue in allowed - {None}
    if placement.queue == ROUTING.queues.get(intent) != spec.queue:
        assert tier == route_ticket(CHARTER, intent, priority, False).tier  # only at the intent's own tier
    if placement.communication_owner is not None:
        assert placement.communication_owner == owner and RANK[owner] < RANK[tier]
    elif owner is not None:
        assert RANK[owner] >= RANK[tier]


def test_an_intent_queue_applies_only_at_the_intents_own_tier():
    assert place(CHARTER, "billing", Priority.P3, Tier.L2, RoutingReason.ESCALATION).queue == "l2-investigations"
    assert place(CHARTER, "billing", Priority.P3, Tier.L1, RoutingReason.BOUNCE).queue == "l1-billing"
    assert place(CHARTER, "refund_fraud", Priority.P3, Tier.L1, RoutingReason.REOPEN).queue == "l1-triage"
    assert place(CHARTER, "refund_fraud", Priority.P3, Tier.L2, RoutingReason.ESCALATION).queue == "l2-investigations"
