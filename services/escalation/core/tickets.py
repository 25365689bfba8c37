"""What escalation knows of a ticket, and what each event makes of it.

Invariants (tests: tests/unit/escalation/test_tickets.py):
1. The *effective owner* is the tier of the latest `ticket.routed`, or, once escalation
   itself sent the ticket elsewhere (`ticket.escalated`, `ticket.bounced` returned_with_fix)
   and router has not answered yet, that tier: escalation knows what it decided. Nobody
   owns a resolved ticket (until router routes it again).
2. A `ticket.routed` to another tier than the current visit's starts a visit (after a
   resolution every routing does: a reopen starts a new cycle): the old visit's pending
   timers are cancelled, the new visit's armed. A routing to the same tier (reassignment)
   changes no timer.
3. A response by the visit's tier or by the communication owner cancels `first_response`
   (the owner's and the communication owner's: the customer heard from the ticket);
   a move (escalation, return with a fix, or a routing elsewhere) and a resolution cancel
   both.
4. A handoff request is judged by `judge_handoff` and always answered: `ticket.escalated`
   or `ticket.bounced` (handoff_incomplete). A return request (only the owner's reach it:
   `shared.lifecycle` invariant 5 ignores and counts the others) from a tier above
   `handoffs.return_to` becomes `ticket.bounced` (returned_with_fix) to `return_to` with
   the fix; one from `return_to` or below is ignored and counted.
5. Every emitted event's id is derived from its cause's id and type, its causation is the
   cause, its correlation and cycle the cause's: a re-run emits the same ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from services.escalation.core.handoffs import Escalate, judge_handoff
from services.escalation.core.sla import SlaTimer, TimerState, answer, arm_visit
from shared.charter import Charter
from shared.envelope import Envelope
from shared.events import (
    RANK,
    BounceReason,
    Event,
    Priority,
    SlaKind,
    TicketBounced,
    TicketCreated,
    TicketEscalated,
    TicketEscalationRequested,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
    TicketRouted,
    Tier,
)

BOTH = (SlaKind.FIRST_RESPONSE, SlaKind.TIME_IN_TIER)


@dataclass(frozen=True, slots=True)
class Visit:
    tier: Tier
    started_by: str  # id of the ticket.routed that started it; its timers carry it


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    correlation_id: str
    priority: Priority
    intent: str
    customer_blocked: bool
    owner: Tier | None = None  # the effective owner
    visit: Visit | None = None
    communication_owner: Tier | None = None  # who keeps the customer updated, when not the owner (jump)


class Verdict(StrEnum):
    """How a handoff was decided (the `verdict` label of the handoff metric)."""

    ESCALATED = "escalated"
    BOUNCED = "bounced"
    RETURNED = "returned"


class Ignored(StrEnum):
    NO_RETURN_PATH = "no_return_path"  # a return requested by a tier not above `handoffs.return_to`


@dataclass(frozen=True, slots=True)
class Decision:
    ticket: Ticket
    emit: tuple[Envelope, ...] = ()
    cancel: tuple[SlaKind, ...] = ()  # kinds of the ticket's pending timers to cancel (before arming)
    arm: tuple[SlaTimer, ...] = ()
    verdict: Verdict | None = None
    ignored: Ignored | None = None


def decide(charter: Charter, ticket: Ticket | None, cause: Envelope, now: datetime) -> Decision:
    """What `cause` does to `ticket` (None only before its `ticket.created`)."""
    event = cause.event
    if isinstance(event, TicketCreated):
        return Decision(
            Ticket(event.ticket_id, cause.correlation_id, event.priority, event.intent, event.customer_blocked)
        )
    if ticket is None:
        raise ValueError(f"{cause.type} before ticket.created (the kit's staleness rule lets none through)")
    match event:
        case TicketRouted():
            routed = replace(ticket, owner=event.tier, communication_owner=event.communication_owner)
            if ticket.visit is not None and ticket.visit.tier is event.tier:
                return Decision(routed)
            visiting = replace(routed, visit=Visit(event.tier, cause.id))
            return Decision(
                visiting,
                cancel=BOTH,
                arm=tuple(arm_visit(charter, visiting, event.tier, cause.id, cause.time, cause.cycle)),
            )
        case TicketResponded():
            by_owner = ticket.visit is not None and event.tier in (ticket.visit.tier, ticket.communication_owner)
            return Decision(ticket, cancel=(SlaKind.FIRST_RESPONSE,) if by_owner else ())
        case TicketEscalationRequested():
            verdict = judge_handoff(charter, ticket, event)
            if isinstance(verdict, Escalate):
                reply: Event = TicketEscalated(
                    ticket_id=ticket.ticket_id,
                    from_tier=verdict.from_tier,
                    to_tier=verdict.to_tier,
                    reason=verdict.reason,
                )
                return Decision(
                    replace(ticket, owner=verdict.to_tier),
                    (answer(cause, reply, now),),
                    cancel=BOTH,
                    verdict=Verdict.ESCALATED,
                )
            reply = TicketBounced(
                ticket_id=ticket.ticket_id,
                from_tier=verdict.from_tier,
                to_tier=verdict.to_tier,
                reason=BounceReason.HANDOFF_INCOMPLETE,
                missing=list(verdict.missing),
            )
            return Decision(ticket, (answer(cause, reply, now),), verdict=Verdict.BOUNCED)
        case TicketReturnRequested():
            home = charter.handoffs.return_to
            if RANK[event.from_tier] <= RANK[home]:
                return Decision(ticket, ignored=Ignored.NO_RETURN_PATH)
            reply = TicketBounced(
                ticket_id=ticket.ticket_id,
                from_tier=event.from_tier,
                to_tier=home,
                reason=BounceReason.RETURNED_WITH_FIX,
                fix_summary=event.fix_summary,
            )
            return Decision(
                replace(ticket, owner=home), (answer(cause, reply, now),), cancel=BOTH, verdict=Verdict.RETURNED
            )
        case TicketResolved():
            return Decision(replace(ticket, owner=None, visit=None, communication_owner=None), cancel=BOTH)
    raise TypeError(f"escalation does not handle {cause.type}")


@dataclass
class Changes:
    """A batch's decisions, folded: what to store and emit."""

    tickets: dict[str, Ticket] = field(default_factory=dict)  # changed tickets, final state
    cancels: set[tuple[str, SlaKind]] = field(default_factory=set)  # (ticket, kind) of timers pending before the batch
    timers: dict[tuple[str, SlaKind, Tier], SlaTimer] = field(default_factory=dict)  # armed in the batch, final state
    emit: list[Envelope] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)


def apply_events(charter: Charter, tickets: Mapping[str, Ticket], events: Sequence[Envelope], now: datetime) -> Changes:
    """Decide `events` in stream order over the stored `tickets`.

    A cancellation reaches both the timers stored before the batch (by ticket and kind:
    those are the current visit's) and a timer armed earlier in the same batch (which is
    then stored already cancelled), so the order of arming and cancelling within a batch
    is kept although the store writes each kind of change in one statement."""
    changes = Changes()
    state = dict(tickets)
    live: dict[tuple[str, SlaKind], list[tuple[str, SlaKind, Tier]]] = {}  # (ticket, kind) -> timers armed in the batch
    for cause in events:
        ticket_id = cause.ticket_id
        decision = decide(charter, state.get(ticket_id), cause, now)
        if decision.ticket != state.get(ticket_id):
            state[ticket_id] = changes.tickets[ticket_id] = decision.ticket
        for kind in decision.cancel:
            changes.cancels.add((ticket_id, kind))
            for armed in live.pop((ticket_id, kind), []):
                changes.timers[armed] = changes.timers[armed].settle(TimerState.CANCELLED)
        for timer in decision.arm:
            changes.timers[timer.key] = timer
            live.setdefault((ticket_id, timer.kind), []).append(timer.key)
        changes.emit.extend(decision.emit)
        if decision.verdict is not None:
            changes.verdicts[decision.verdict] += 1
        if decision.ignored is not None:
            changes.ignored[decision.ignored] += 1
    return changes
