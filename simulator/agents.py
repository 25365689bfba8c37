"""What the simulated agents and customers do when they see a ticket's events. Pure: an
observed event in, the commands to send out.

Agents act on what the stream says, as real ones would: a tier acts when the ticket arrives
there (`ticket.routed` to a new tier), so when reality departs from the plan (an SLA breach
moved the ticket first, a handoff was refused) they act on where the ticket really is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.plans import TicketPlan

COMPLETE_CHECKLIST = {
    "impact": "Every user of the customer's workspace is affected",
    "steps_attempted": ["reproduced in a clean browser", "cleared the session", "checked the status page"],
    "attachments": ["request id 7f3c", "screenshot of the error"],
    "problem_statement": "Requests fail after the latest change",
}
SLOPPY_CHECKLIST = {"impact": "customer unhappy"}


@dataclass(frozen=True, slots=True)
class Action:
    """One command: the path under /v1/tickets/{id}/ (HTTP) and its body."""

    path: str
    body: dict[str, Any]


@dataclass
class Seen:
    """A ticket as its agents know it from the stream."""

    owner: str | None = None
    communication_owner: str | None = None
    open: bool = True
    visits: dict[str, int] = field(default_factory=dict)
    returned: bool = False  # a quick fix was handed back already
    retried_handoff: bool = False
    reopened: bool = False
    done: bool = False


def agent(tier: str) -> str:
    return f"sim-{tier.lower()}"


def respond(tier: str) -> Action:
    return Action("responses", {"tier": tier, "agent_id": agent(tier)})


def resolve(tier: str) -> Action:
    return Action("resolution", {"tier": tier, "agent_id": agent(tier), "resolution_code": "fixed"})


def escalate(source: str, target: str, *, complete: bool) -> Action:
    body: dict[str, Any] = {"from_tier": source, "to_tier": target, "agent_id": agent(source)}
    if complete:
        body |= {"checklist": COMPLETE_CHECKLIST, "hypothesis": "The last deploy broke token refresh"}
    else:
        body |= {"checklist": SLOPPY_CHECKLIST, "hypothesis": "it's broken"}
    return Action("escalations", body)


def react(plan: TicketPlan, seen: Seen, event_type: str, body: dict[str, Any]) -> list[Action]:
    """The commands that answer `event_type` (and what the agents now know, in `seen`)."""
    if event_type == "ticket.routed":
        tier = body["tier"]
        seen.communication_owner = body.get("communication_owner")
        if tier == seen.owner:
            return []  # an assignment within the tier: nothing new to do
        seen.owner = tier
        seen.visits[tier] = seen.visits.get(tier, 0) + 1
        return _arrive(plan, seen, tier, body["reason"])
    if event_type == "ticket.bounced":
        incomplete = body["reason"] == "handoff_incomplete"
        if incomplete and seen.open and seen.owner == body["to_tier"] and not seen.retried_handoff:
            seen.retried_handoff = True  # the checklist is completed, once
            return [escalate(body["to_tier"], body["from_tier"], complete=True)]
        return []
    if event_type == "ticket.resolved":
        seen.open, seen.owner = False, None
        actions = []
        if plan.rating is not None and not seen.reopened:
            actions.append(Action("rating", {"score": plan.rating}))
        if plan.reopen and not seen.reopened:
            seen.reopened = True
            actions.append(Action("reopen", {}))
        else:
            seen.done = True
        return actions
    if event_type == "ticket.reopened":
        seen.open = True
    return []


def _arrive(plan: TicketPlan, seen: Seen, tier: str, reason: str) -> list[Action]:
    if reason in ("bounce", "reopen"):  # L1 closes the loop; a reopened ticket is fixed again
        return [respond(tier), resolve(tier)]
    if tier == "L1":
        if plan.persona == "lapse" and seen.visits["L1"] == 1:
            return []  # nobody picks it up: the SLA moves it
        if plan.persona in ("handoff", "deep"):
            return [respond("L1"), escalate("L1", "L2", complete=True)]
        if plan.persona == "sloppy_handoff":
            return [respond("L1"), escalate("L1", "L2", complete=False)]
        return [respond("L1"), resolve("L1")]
    actions = [respond(tier)]
    if seen.communication_owner is not None:
        actions.append(respond(seen.communication_owner))  # the customer hears from their one owner
    if plan.persona == "deep" and tier == "L2":
        return [*actions, escalate("L2", "L3", complete=True)]
    if plan.return_fix and not seen.returned and tier in ("L2", "L3"):
        seen.returned = True
        return [
            *actions,
            Action(
                "returns",
                {
                    "from_tier": tier,
                    "agent_id": agent(tier),
                    "fix_summary": "Cleared the stale token cache; retry works",
                },
            ),
        ]
    return [*actions, resolve(tier)]
