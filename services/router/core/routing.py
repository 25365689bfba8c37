"""Where a ticket belongs: the charter's placement rules, as pure functions.

Invariants (tests: tests/unit/router/test_routing.py):
1. Every placement names exactly one tier and one queue of that tier (its queue, an
   intent queue, its shadow queue, or the fallback queue).
2. A blocked customer with a jump intent goes to `jump.to` (reason `jump`) while
   `jump.communication_owner` keeps the customer updated.
3. A parallel-own intent goes to `parallel_own.owner` while `communication_owner` tries a
   safe workaround and keeps the customer updated.
4. A suspected bug waits in the bug tier's shadow queue, never auto-assigned, unless it is
   urgent (P1 or a jump): urgent work is not batched.
5. An intent nobody declared goes to `routing.fallback` (L1 triage).
6. An intent's own queue (`routing.queues`) applies only at the tier that intent normally
   goes to; elsewhere the tier's queue.
7. A communication owner is kept only while it is below the owning tier; None means the
   owning tier talks to the customer itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.charter import Charter, Routing
from shared.events import RANK, Priority, RoutingReason, Tier


@dataclass(frozen=True, slots=True)
class Placement:
    tier: Tier
    queue: str
    reason: RoutingReason
    communication_owner: Tier | None = None
    urgent: bool = False  # a jump or P1: assigned at once, even outside the tier's office hours
    shadow: bool = False  # waits in a shadow queue for the tier to batch it: never auto-assigned


def declared(routing: Routing, intent: str) -> bool:
    return (
        intent in routing.suspected_bugs
        or intent in routing.straight_to_l2
        or intent in routing.l1_owns
        or (routing.parallel_own is not None and intent in routing.parallel_own.intents)
    )


def home_tier(routing: Routing, intent: str) -> Tier:
    """The tier an intent normally goes to (no jump)."""
    if intent in routing.suspected_bugs:
        return routing.bug_tier
    if routing.parallel_own is not None and intent in routing.parallel_own.intents:
        return routing.parallel_own.owner
    if intent in routing.straight_to_l2:
        return Tier.L2
    if intent in routing.l1_owns:
        return Tier.L1
    return routing.fallback.tier


def place(
    charter: Charter,
    intent: str,
    priority: Priority,
    tier: Tier,
    reason: RoutingReason,
    communication_owner: Tier | None = None,
    *,
    jump: bool = False,
) -> Placement:
    """`intent` at `tier`: its queue, whether it is urgent or shadowed, who talks to the customer."""
    routing = charter.routing
    urgent = jump or priority is Priority.P1
    shadow = not urgent and tier == routing.bug_tier and intent in routing.suspected_bugs
    spec = charter.tiers[tier]
    if shadow:
        queue = spec.shadow_queue
    elif tier != home_tier(routing, intent):
        queue = spec.queue
    elif intent in routing.queues:
        queue = routing.queues[intent]
    else:
        queue = spec.queue if declared(routing, intent) else routing.fallback.queue
    if communication_owner is not None and RANK[communication_owner] >= RANK[tier]:
        communication_owner = None
    assert queue is not None  # the charter requires a shadow queue at the bug tier
    return Placement(tier, queue, reason, communication_owner, urgent, shadow)


def route_ticket(charter: Charter, intent: str, priority: Priority, customer_blocked: bool) -> Placement:
    """The first placement of a new ticket."""
    routing = charter.routing
    jump = routing.jump
    if customer_blocked and jump is not None and intent in jump.intents:
        return place(charter, intent, priority, jump.to, RoutingReason.JUMP, jump.communication_owner, jump=True)
    parallel = routing.parallel_own
    communication_owner = parallel.communication_owner if parallel and intent in parallel.intents else None
    return place(charter, intent, priority, home_tier(routing, intent), RoutingReason.RULE, communication_owner)
