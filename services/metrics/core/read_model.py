"""The read model: each ticket's current state and timeline, and its open SLA deadlines.

Pure: the handler loads the batch's ticket states, `fold` decides, the store writes.

Invariants (tests: tests/unit/metrics/test_read_model.py, tests/integration/metrics/test_read_api.py):
1. The state is a function of the ticket's fresh events in stream order: the owner, queue,
   assignee and communication owner of its latest `ticket.routed`; open from
   `ticket.created` and each `ticket.reopened`, resolved by `ticket.resolved`; its client is
   `ticket.created`'s ce_client, and a read key sees a ticket only if `visible` says so.
2. A visit starts as the KPIs define it (a routing to another tier, or any routing after a
   resolution); `queued_at` moves with every routing that changes the queue.
3. Open deadlines are escalation's timers computed the same way (`arm_visit`'s rule: the
   owner's targets in its calendar from the visit's start, and the communication owner's
   first response in its own), less what the timeline already settled: a response by the
   owner or the communication owner settles first responses, a breach its own timer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.escalation.core.working_time import add_working_time
from shared.charter import Charter
from shared.envelope import Envelope
from shared.events import (
    Priority,
    TicketCreated,
    TicketReopened,
    TicketResolved,
    TicketRouted,
    Tier,
)


@dataclass(frozen=True, slots=True)
class TicketNow:
    ticket_id: str
    priority: str
    intent: str
    customer_blocked: bool
    status: str
    tier: str | None
    queue: str | None
    assignee: str | None
    communication_owner: str | None
    queued_at: datetime | None
    visit_start: datetime | None
    created_at: datetime
    client: str | None = None  # who created it (ce_client): the read scope


def visible(reader: str, all_tickets: bool, ticket: TicketNow) -> bool:
    """A read key sees the tickets its client created, or every ticket with `tickets: all`
    (like writes, services/intake/core/auth.py); a ticket of no known client only with `all`."""
    return all_tickets or (ticket.client is not None and ticket.client == reader)


def fold(states: Mapping[str, TicketNow], events: Iterable[Envelope]) -> dict[str, TicketNow]:
    """The states the events change (events of tickets never created are left out)."""
    changed: dict[str, TicketNow] = {}
    for envelope in events:
        event, ticket_id = envelope.event, envelope.ticket_id
        state = changed.get(ticket_id, states.get(ticket_id))
        if isinstance(event, TicketCreated):
            if state is None:
                changed[ticket_id] = TicketNow(
                    ticket_id, event.priority.value, event.intent, event.customer_blocked,
                    "open", None, None, None, None, None, None, envelope.time, envelope.client,
                )  # fmt: skip
            continue
        if state is None:
            continue
        if isinstance(event, TicketRouted):
            new_visit = state.tier != event.tier.value or state.visit_start is None
            moved = new_visit or state.queue != event.queue
            state = replace(
                state,
                tier=event.tier.value,
                queue=event.queue,
                assignee=event.assignee,
                communication_owner=event.communication_owner.value if event.communication_owner else None,
                queued_at=envelope.time if moved else state.queued_at,
                visit_start=envelope.time if new_visit else state.visit_start,
            )
        elif isinstance(event, TicketResolved):
            state = replace(state, status="resolved", assignee=None, visit_start=None, queued_at=None)
        elif isinstance(event, TicketReopened):
            state = replace(state, status="open")
        else:
            continue
        changed[ticket_id] = state
    return changed


@dataclass(frozen=True, slots=True)
class Deadline:
    tier: str
    kind: str
    due_at: datetime


def open_deadlines(charter: Charter, now: TicketNow, timeline: Sequence[Mapping[str, Any]]) -> list[Deadline]:
    """The ticket's pending SLA deadlines, from its state and timeline (`type`, `at`, `body`)."""
    if now.status != "open" or now.tier is None or now.visit_start is None:
        return []
    owner = Tier(now.tier)
    spec = charter.tiers.get(owner)
    if spec is None:
        return []
    priority = Priority(now.priority)
    target = spec.sla[priority]
    hours = charter.calendar(spec.working_hours)
    pending = {
        (owner.value, "first_response"): add_working_time(now.visit_start, target.first_response, hours),
        (owner.value, "time_in_tier"): add_working_time(now.visit_start, target.time_in_tier, hours),
    }
    speaker = Tier(now.communication_owner) if now.communication_owner else None
    rule = charter.communication_rule(now.intent, now.customer_blocked)
    talks = charter.tiers.get(speaker) if speaker is not None else None
    if talks is not None and speaker is not None and rule is not None and rule.communication_sla:
        due = add_working_time(
            now.visit_start, talks.sla[priority].first_response, charter.calendar(talks.working_hours)
        )
        pending[(speaker.value, "first_response")] = due
    for entry in timeline:
        if entry["at"] < now.visit_start:
            continue
        body = entry["body"]
        if entry["type"] == "ticket.responded" and body["tier"] in (owner.value, now.communication_owner):
            pending = {key: due for key, due in pending.items() if key[1] != "first_response"}
        elif entry["type"] == "ticket.sla_breached":
            pending.pop((body["tier"], body["kind"]), None)
    return [Deadline(tier, kind, due) for (tier, kind), due in sorted(pending.items(), key=lambda kv: kv[1])]


def who_acted(event_type: str, body: Mapping[str, Any]) -> str | None:
    """The agent the event names (the assignee of a routing), if any; services act for no one."""
    if event_type == "ticket.routed":
        return body.get("assignee")
    return body.get("agent_id")


def why(event_type: str, body: Mapping[str, Any]) -> str | None:
    """One line saying why the event happened, from its own fields."""
    match event_type:
        case "ticket.routed":
            return str(body["reason"])
        case "ticket.escalated" | "ticket.bounced":
            missing = body.get("missing") or []
            return str(body["reason"]) + (f" (missing: {', '.join(missing)})" if missing else "")
        case "ticket.escalation_requested":
            return f"hypothesis: {body['hypothesis']}" if body.get("hypothesis") else "no hypothesis"
        case "ticket.return_requested":
            return "returned with a fix"
        case "ticket.sla_breached":
            return f"{body['kind']} deadline {body['deadline']}"
        case "ticket.resolved":
            return str(body["resolution_code"])
        case "ticket.claim_requested":
            return f"batch {body['batch_id']}"
    return None


def stored_body(envelope: Envelope) -> dict[str, Any]:
    """What the timeline keeps of an event: its fields less customer text."""
    return envelope.event.model_dump(
        mode="json", exclude={"subject"} if isinstance(envelope.event, TicketCreated) else None
    )
