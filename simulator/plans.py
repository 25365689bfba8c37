"""Who the simulated tickets are and how their agents behave: deterministic for a seed.

Each ticket gets a persona (the path the seeds describe: L1 fixes it, a clean handoff, a
sloppy handoff that bounces, straight to L2, parallel-own, a blocked customer's jump, an SLA
that lapses, a suspected bug, an intent nobody declared), an intent the charter places that
way, a transport (HTTP or the commands topic) and what the customer does afterwards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shared.charter import Charter

# persona -> share of the traffic
MIX = {
    "l1_fix": 30,
    "handoff": 12,
    "deep": 4,
    "sloppy_handoff": 8,
    "l2_direct": 10,
    "parallel": 5,
    "jump": 7,
    "lapse": 6,
    "bug": 5,
    "triage": 15,
}
CHANNELS = ("email", "chat", "phone", "web", "api")
UNDECLARED_INTENTS = ("question", "feature_request", "other")


@dataclass(frozen=True, slots=True)
class TicketPlan:
    index: int
    persona: str
    intent: str
    priority: str
    blocked: bool
    channel: str
    transport: str  # "http" or "topic"
    return_fix: bool  # L2/L3 hands it back with a quick fix instead of resolving
    rating: int | None  # the customer's score after the (first) resolution
    reopen: bool  # the customer comes back once


def plan_tickets(
    seed: int, count: int, charter: Charter, *, topic_share: float = 0.2, lapse: bool = True
) -> list[TicketPlan]:
    """`lapse`: whether some tickets wait for their L1 SLA to move them (only sensible on a
    charter with short targets, like deploy/charter/demo.yaml)."""
    rng = random.Random(seed)
    routing = charter.routing
    special = set(routing.suspected_bugs) | set(routing.jump.intents if routing.jump else ())
    parallel = list(routing.parallel_own.intents) if routing.parallel_own else []
    pools = {
        "l1": [i for i in routing.l1_owns if i not in special],
        "l2": [i for i in routing.straight_to_l2 if i not in parallel],
        "parallel": parallel,
        "jump": list(routing.jump.intents) if routing.jump else [],
        "bug": [i for i in routing.suspected_bugs if not routing.jump or i not in routing.jump.intents]
        or list(routing.suspected_bugs),
    }
    personas = [
        p for p, weight in MIX.items() if _possible(p, pools) and (lapse or p != "lapse") for _ in range(weight)
    ]
    plans = []
    for index in range(count):
        persona = rng.choice(personas)
        pool = {
            "l2_direct": "l2",
            "parallel": "parallel",
            "jump": "jump",
            "bug": "bug",
        }.get(persona, "l1")
        intent = rng.choice(UNDECLARED_INTENTS) if persona == "triage" else rng.choice(pools[pool])
        plans.append(
            TicketPlan(
                index=index,
                persona=persona,
                intent=intent,
                priority=rng.choice(("P1", "P2", "P3", "P3", "P4")),
                blocked=persona == "jump",
                channel=rng.choice(CHANNELS),
                transport="topic" if rng.random() < topic_share else "http",
                return_fix=persona in ("handoff", "jump", "parallel") and rng.random() < 0.4,
                rating=rng.choice((1, 2, 3, 4, 4, 5, 5, 5)) if rng.random() < 0.7 else None,
                reopen=rng.random() < 0.1,
            )
        )
    return plans


def _possible(persona: str, pools: dict[str, list[str]]) -> bool:
    needs = {"l2_direct": "l2", "parallel": "parallel", "jump": "jump", "bug": "bug"}.get(persona, "l1")
    return bool(pools[needs])
