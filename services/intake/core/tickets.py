"""Intake's decision core: does a command fit the ticket, and which event does it produce?

Pure functions over plain data: no I/O, no clock (time comes in with the submission), no
randomness (ids derive from the command id; a fresh one comes from the handler).

Invariants:
1. Every accepted command yields exactly one event whose id derives from the command id,
   so processing the same command twice can only ever produce the same event.
2. A repeated command (same command id, or a create for an existing upstream ticket) with
   the same content is answered with the original outcome and produces no event; with
   different content it is rejected.
3. Ticket lifecycle: the one rule every consumer applies (`shared.lifecycle`): responses,
   handoffs, claims and resolution need an open ticket, reopening and rating a resolved
   one; one rating per resolution. What the rule finds stale, intake refuses.
4. Cycles: a ticket is created in cycle 1 and each reopen starts the next; every event
   carries the cycle it belongs to (`ce_cycle`), the reopen the one it starts.
5. Scope: a ticket remembers the client that created it. A client whose key is not granted
   every ticket acts only on its own: another client's ticket is `unknown_ticket`, exactly
   like a ticket that does not exist (its existence does not leak), and yields no event.
6. Audit: every event names the acting client (`ce_client`) and the agent its command
   named, if any (`ce_agent`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.intake.core.commands import (
    ClaimTicketRequest,
    CreateTicketRequest,
    RateTicketRequest,
    RecordResponseRequest,
    ReopenTicketRequest,
    Request,
    RequestEscalationRequest,
    ResolveTicketRequest,
    ReturnWithFixRequest,
)
from shared.envelope import Envelope, derive_id, name_based_id
from shared.events import (
    Event,
    TicketClaimRequested,
    TicketCreated,
    TicketEscalationRequested,
    TicketRated,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
)
from shared.lifecycle import Lifecycle, Stale, Status, advance

SOURCE = "ladder/intake"
_NAMESPACE = uuid.UUID("4b1d2f5e-7a0c-4c8e-bf0e-2d9f8c3a6e51")


class RejectCode(StrEnum):
    MALFORMED = "malformed"  # not a valid command at all (topic input only)
    UNKNOWN_TICKET = "unknown_ticket"
    TICKET_RESOLVED = "ticket_resolved"
    TICKET_OPEN = "ticket_open"
    ALREADY_RATED = "already_rated"
    REUSED_KEY = "idempotency_key_reused"
    TICKET_EXISTS = "ticket_exists"


@dataclass(frozen=True, slots=True)
class Ticket:
    """What intake must remember about a ticket to validate the next command."""

    ticket_id: str
    correlation_id: str  # id of its ticket.created event
    created_fingerprint: str
    status: Status = Status.OPEN
    rated: bool = False  # rated since the last resolution
    cycle: int = 1  # the current cycle: 1, and one more per reopen
    client: str | None = None  # the client that created it (None: created before clients were remembered)


@dataclass(frozen=True, slots=True)
class Submission:
    """One command as received: the validated request plus who sent it and its identity."""

    request: Request
    ticket_id: str
    command_id: str
    client: str
    received_at: datetime
    repeatable: bool = True  # False for a random command id: it can never come again, so it is not remembered
    # A command identified by its record's position is a repeat exactly when it is the same
    # record: its fingerprint is that of the record's bytes, whatever they were judged to be.
    record_fingerprint: str | None = None
    # A dead letter sent back by an operator once its cause was fixed: its first outcome (the
    # dead letter) does not stand; its first acceptance does (service.process).
    redrive: bool = False
    all_tickets: bool = False  # the client's key is granted every ticket, not only its own

    @property
    def fingerprint(self) -> str:
        if self.record_fingerprint:
            return self.record_fingerprint
        return fingerprint(self.request, None if isinstance(self.request, CreateTicketRequest) else self.ticket_id)


@dataclass(frozen=True, slots=True)
class PriorCommand:
    """A command id already processed, and what it produced."""

    fingerprint: str
    ticket_id: str
    event_id: str
    event_type: str


@dataclass(frozen=True, slots=True)
class Accepted:
    envelope: Envelope
    ticket: Ticket


@dataclass(frozen=True, slots=True)
class Replayed:
    """The command was seen before with the same content: here is its original outcome."""

    ticket_id: str
    event_id: str
    event_type: str


@dataclass(frozen=True, slots=True)
class Rejected:
    code: RejectCode
    reason: str


Decision = Accepted | Replayed | Rejected


def fingerprint(request: Request, ticket_id: str | None = None) -> str:
    """What a repeat must match: the command (method and path) and its body, and for a
    command on a ticket, that ticket: one idempotency key names one request."""
    where = f"{ticket_id}:" if ticket_id else ""  # a ticket id has no "{", the body starts with one
    subject = f"{type(request).__name__}:{where}{request.model_dump_json()}"
    return hashlib.sha256(subject.encode(errors="surrogatepass")).hexdigest()


def command_id(client: str, *, idempotency_key: str) -> str:
    """The id of a client's command named by an idempotency key (keys are scoped per client:
    two clients may use the same key). A command without one gets a fresh id from the
    handler's injected source: the core derives ids, it never draws them."""
    return name_based_id(_NAMESPACE, f"key/{client}/{idempotency_key}")


def new_ticket_id(client: str, request: CreateTicketRequest, command: str) -> str:
    """An upstream `external_id` *is* the ticket's identity for that client; otherwise the
    ticket id derives from the command id, so a retried create names the same ticket."""
    if request.external_id is not None:
        return external_ticket_id(client, request.external_id)
    return name_based_id(_NAMESPACE, f"ticket/{command}")


def external_ticket_id(client: str, external_id: str) -> str:
    """The Ladder ticket a client's upstream id names (help-desk webhooks address tickets so)."""
    return name_based_id(_NAMESPACE, f"external/{client}/{external_id}")


def decide(ticket: Ticket | None, prior: PriorCommand | None, submission: Submission) -> Decision:
    """Decide one command against the ticket's state and the command's own history."""
    if prior is not None:
        if prior.fingerprint != submission.fingerprint:
            return Rejected(
                RejectCode.REUSED_KEY,
                "this idempotency key was used for a different request (another body, command or ticket)",
            )
        return Replayed(prior.ticket_id, prior.event_id, prior.event_type)

    request = submission.request
    if isinstance(request, CreateTicketRequest):
        if ticket is not None:
            if ticket.created_fingerprint == submission.fingerprint:
                return Replayed(ticket.ticket_id, ticket.correlation_id, TicketCreated.TYPE)
            return Rejected(RejectCode.TICKET_EXISTS, "a ticket with this external_id exists with different content")
        return _create(submission, request)

    if ticket is None or not (submission.all_tickets or ticket.client == submission.client):
        return Rejected(RejectCode.UNKNOWN_TICKET, f"ticket {submission.ticket_id} does not exist")
    match request:
        case RecordResponseRequest():
            return _step(
                ticket,
                submission,
                TicketResponded(ticket_id=ticket.ticket_id, tier=request.tier, agent_id=request.agent_id),
            )
        case RequestEscalationRequest():
            return _step(
                ticket,
                submission,
                TicketEscalationRequested(
                    ticket_id=ticket.ticket_id,
                    from_tier=request.from_tier,
                    to_tier=request.to_tier,
                    agent_id=request.agent_id,
                    checklist=request.checklist,
                    hypothesis=request.hypothesis,
                ),
            )
        case ReturnWithFixRequest():
            return _step(
                ticket,
                submission,
                TicketReturnRequested(
                    ticket_id=ticket.ticket_id,
                    from_tier=request.from_tier,
                    to_tier=request.to_tier,
                    agent_id=request.agent_id,
                    fix_summary=request.fix_summary,
                ),
            )
        case ClaimTicketRequest():
            claim = TicketClaimRequested(
                ticket_id=ticket.ticket_id, tier=request.tier, agent_id=request.agent_id, batch_id=request.batch_id
            )
            return _step(ticket, submission, claim)
        case ResolveTicketRequest():
            return _step(
                ticket,
                submission,
                TicketResolved(
                    ticket_id=ticket.ticket_id,
                    tier=request.tier,
                    agent_id=request.agent_id,
                    resolution_code=request.resolution_code,
                ),
            )
        case ReopenTicketRequest():
            return _step(ticket, submission, TicketReopened(ticket_id=ticket.ticket_id))
        case RateTicketRequest():
            return _step(ticket, submission, TicketRated(ticket_id=ticket.ticket_id, score=request.score))
    raise TypeError(f"unhandled request {type(request).__name__}")


def _create(submission: Submission, request: CreateTicketRequest) -> Accepted:
    event_id = derive_id(submission.command_id, TicketCreated.TYPE)
    # `model_construct` skips re-validation: every field comes from the validated request,
    # whose constraints are the event's (tests decode every produced event to hold this).
    event = TicketCreated.model_construct(
        ticket_id=submission.ticket_id,
        customer_id=request.customer_id,
        channel=request.channel,
        subject=request.subject,
        intent=request.intent,
        priority=request.priority,
        customer_blocked=request.customer_blocked,
        created_at=request.created_at or submission.received_at,
        external_id=request.external_id,
    )
    ticket = Ticket(
        submission.ticket_id,
        correlation_id=event_id,
        created_fingerprint=submission.fingerprint,
        client=submission.client,
    )
    return Accepted(_envelope(event, event_id, ticket, submission), ticket)


_REFUSED = {
    Stale.TICKET_RESOLVED: (RejectCode.TICKET_RESOLVED, "the ticket is resolved; reopen it first"),
    Stale.ALREADY_RATED: (RejectCode.ALREADY_RATED, "this resolution was already rated"),
}


def _step(ticket: Ticket, submission: Submission, event: Event) -> Decision:
    """Accept `event` when it fits the ticket's lifecycle (invariant 3), moved by it (a
    reopen's event carries the cycle it starts)."""
    verdict = advance(Lifecycle(ticket.status, ticket.rated, ticket.cycle), event.TYPE)
    if isinstance(verdict, Stale):
        if verdict is Stale.TICKET_OPEN:
            done = "reopened" if isinstance(event, TicketReopened) else "rated"
            return Rejected(RejectCode.TICKET_OPEN, f"only a resolved ticket can be {done}")
        code, reason = _REFUSED[verdict]  # unknown ticket, exists, earlier cycle: not reachable here
        return Rejected(code, reason)
    moved = replace(ticket, status=verdict.status, rated=verdict.rated, cycle=verdict.cycle)
    return _accept(moved, submission, event)


def _accept(ticket: Ticket, submission: Submission, event: Event) -> Accepted:
    event_id = derive_id(submission.command_id, event.TYPE)
    return Accepted(_envelope(event, event_id, ticket, submission), ticket)


def _envelope(event: Event, event_id: str, ticket: Ticket, submission: Submission) -> Envelope:
    return Envelope(
        event=event,
        id=event_id,
        source=SOURCE,
        time=submission.received_at,
        correlation_id=ticket.correlation_id,
        causation_id=submission.command_id,
        cycle=ticket.cycle,
        client=submission.client,
        agent=getattr(submission.request, "agent_id", None),
    )
