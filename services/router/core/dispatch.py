"""What ticket events do to ownership: placements, moves, freed capacity, assignments, and
the `ticket.routed` events they cause. Pure: the handler loads the batch's tickets, the
locked desks and the waiting tickets they may assign; `dispatch` decides; the handler stores
the outcome and stages the events.

Invariants (tests: tests/unit/router/test_dispatch.py, test_properties.py):
1. Every ticket has exactly one owning tier and at most one assignee, an agent of that tier;
   a resolved ticket has none and remembers the tier that resolved it (the owner).
2. No agent ever holds more than `max_open_per_agent` open tickets of a tier, whatever the
   sequence of creates, moves, resolves and reopens.
3. Waiting tickets are assigned priority first (P1 before P4), then oldest first (when they
   entered the queue), then by ticket id; a tier never leaves a ticket it takes waiting
   while an available agent has room.
4. One `ticket.routed` per event that places a ticket (created, escalated, bounced with a
   fix, reopened), with the assignee it got at once or None; one more (reason
   `assignment`, same tier) when a waiting ticket gets an agent later.
5. Ids derive from causes: `derive_id(event, "routed")`; an assignment from the routed event
   that left the ticket waiting, so whoever assigns it (a batch, the periodic pass, another
   replica) emits the same id, once. A routed event carries the cycle of the event that
   placed the ticket (`ce_cycle`).
7. A claim (`ticket.claim_requested`) takes a ticket out of its tier's shadow queue once,
   into the tier's queue, to the claiming agent when that agent is on the tier's roster
   with room (else it waits in line, urgent: claimed work is not batched again); routed
   reason `claim`. A claim of a ticket not (any more) in a shadow queue, or by a tier the
   charter does not let claim there, moves nothing (counted as ignored).
6. An event that moves nothing emits nothing: a bounce with `handoff_incomplete` (the
   handoff never happened), an escalation or bounce to the tier the ticket is at, or to a
   tier not in use (those two counted as ignored).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from services.router.core.assignment import Desk
from services.router.core.routing import Placement, place, route_ticket
from shared.charter import Charter
from shared.envelope import Envelope, derive_id
from shared.events import (
    BounceReason,
    EscalationReason,
    Priority,
    RoutingReason,
    TicketBounced,
    TicketClaimRequested,
    TicketCreated,
    TicketEscalated,
    TicketReopened,
    TicketResolved,
    Tier,
)

CREATED, ESCALATED, BOUNCED, RESOLVED, REOPENED, CLAIMED = (
    TicketCreated.TYPE,
    TicketEscalated.TYPE,
    TicketBounced.TYPE,
    TicketResolved.TYPE,
    TicketReopened.TYPE,
    TicketClaimRequested.TYPE,
)


@dataclass(slots=True)
class Ticket:
    ticket_id: str
    correlation_id: str  # the ticket's first event id, carried by every routed event
    intent: str
    priority: Priority
    tier: Tier  # the owning tier; once resolved, the tier that resolved it
    queue: str
    assignee: str | None
    communication_owner: Tier | None
    urgent: bool
    shadow: bool
    resolved: bool
    queued_at: datetime  # when it entered its queue (the placing event's time)
    routed_id: str  # the last ticket.routed about it (assignment ids derive from it)
    cycle: int | None = None  # the cycle of the event that last placed it (None: placed before cycles)

    @property
    def waiting(self) -> bool:
        """Open, in a queue that assigns, with nobody on it."""
        return self.assignee is None and not self.resolved and not self.shadow


@dataclass(frozen=True, slots=True)
class Routed:
    """A `ticket.routed` to emit."""

    ticket_id: str
    tier: Tier
    queue: str
    assignee: str | None
    reason: RoutingReason
    communication_owner: Tier | None
    event_id: str
    causation_id: str
    correlation_id: str
    cycle: int | None  # the ticket's cycle when it was placed: a routed event belongs to it


@dataclass
class Outcome:
    routed: list[Routed] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)  # new or changed
    ignored: Counter[str] = field(default_factory=Counter)


def touched(charter: Charter, events: Sequence[Envelope], tiers_now: dict[str, Tier]) -> set[Tier]:
    """Every tier whose desk `events` may change: where their tickets are and may go."""
    tiers = set(tiers_now.values())
    for envelope in events:  # by type name: isinstance on pydantic models costs more than routing
        kind, event = envelope.type, envelope.event
        if kind == CREATED:
            created = cast(TicketCreated, event)
            tiers.add(route_ticket(charter, created.intent, created.priority, created.customer_blocked).tier)
        elif kind in (ESCALATED, BOUNCED):
            tiers.add(cast(TicketEscalated | TicketBounced, event).to_tier)
        elif kind == REOPENED:
            reopen_to = charter.routing.reopen_to
            tiers.add(reopen_to if isinstance(reopen_to, Tier) else charter.routing.fallback.tier)
    return tiers


def wanted(desks: dict[Tier, Desk], events: Sequence[Envelope]) -> dict[Tier, int]:
    """How many waiting tickets per tier the batch could assign at most: today's room plus one
    per event that may free a seat. Loading the first that many in line is enough."""
    frees = sum(1 for envelope in events if envelope.type != CREATED)
    return {tier: desk.free() + frees for tier, desk in desks.items() if desk.available and desk.free() + frees}


class _Floor:
    def __init__(
        self, charter: Charter, desks: dict[Tier, Desk], tickets: dict[str, Ticket], waiting: Iterable[Ticket]
    ) -> None:
        self.charter, self.desks, self.tickets = charter, desks, tickets
        self.outcome = Outcome()
        self.changed: dict[str, Ticket] = {}
        for ticket in waiting:
            self._queue(self.tickets.setdefault(ticket.ticket_id, ticket))

    def apply(self, envelope: Envelope) -> None:
        kind, event = envelope.type, envelope.event
        routing = self.charter.routing
        if kind == CREATED:
            created = cast(TicketCreated, event)
            placement = route_ticket(self.charter, created.intent, created.priority, created.customer_blocked)
            ticket = Ticket(
                created.ticket_id,
                envelope.correlation_id,
                created.intent,
                created.priority,
                placement.tier,
                placement.queue,
                None,
                None,
                False,
                False,
                False,
                envelope.time,
                "",
            )
            self.tickets[ticket.ticket_id] = ticket
            self._arrive(ticket, placement, envelope)
            return
        ticket = self.tickets[event.ticket_id]
        if kind == CLAIMED:
            self._claim(ticket, cast(TicketClaimRequested, event), envelope)
            return
        if kind == RESOLVED:
            freed = self._leave(ticket)
            ticket.resolved = True
            self.changed[ticket.ticket_id] = ticket
            if freed is not None:
                self.fill(freed)
        elif kind == REOPENED:
            tier = routing.reopen_to if isinstance(routing.reopen_to, Tier) else ticket.tier
            if tier not in self.charter.tiers:  # the resolving tier left the charter
                tier = routing.fallback.tier
            ticket.resolved = False
            self._arrive(
                ticket,
                place(
                    self.charter, ticket.intent, ticket.priority, tier, RoutingReason.REOPEN, ticket.communication_owner
                ),
                envelope,
            )
        else:  # escalated or bounced
            move = cast(TicketEscalated | TicketBounced, event)
            if kind == BOUNCED and move.reason is BounceReason.HANDOFF_INCOMPLETE:
                return  # the handoff never happened: the ticket stays where it is
            if move.to_tier not in self.charter.tiers:
                self.outcome.ignored["tier_not_in_use"] += 1
                return
            if move.to_tier == ticket.tier:
                self.outcome.ignored["same_tier"] += 1
                return
            jump = kind == ESCALATED and move.reason is EscalationReason.JUMP
            owner = ticket.communication_owner
            if jump and routing.jump is not None:
                owner = routing.jump.communication_owner
            reason = RoutingReason.ESCALATION if kind == ESCALATED else RoutingReason.BOUNCE
            freed = self._leave(ticket)
            self._arrive(
                ticket,
                place(self.charter, ticket.intent, ticket.priority, move.to_tier, reason, owner, jump=jump),
                envelope,
            )
            if freed is not None:
                self.fill(freed)

    def fill(self, desk: Desk, placing: Ticket | None = None) -> None:
        """Assign waiting tickets in line while an available agent has room. `placing` is the
        ticket whose own routed event (emitted after this) carries its assignee."""
        while desk.line:
            agent = desk.next_agent()
            ticket = self._next_in_line(desk) if agent is not None else None
            if agent is None or ticket is None:
                return
            desk.take(agent)
            ticket.assignee = agent
            self.changed[ticket.ticket_id] = ticket
            if ticket is not placing:
                event_id = derive_id(ticket.routed_id, "assignment")
                self.outcome.routed.append(
                    Routed(
                        ticket.ticket_id,
                        ticket.tier,
                        ticket.queue,
                        agent,
                        RoutingReason.ASSIGNMENT,
                        ticket.communication_owner,
                        event_id,
                        ticket.routed_id,
                        ticket.correlation_id,
                        ticket.cycle,
                    )
                )
                ticket.routed_id = event_id

    def result(self) -> Outcome:
        self.outcome.tickets = list(self.changed.values())
        return self.outcome

    def _arrive(self, ticket: Ticket, placement: Placement, cause: Envelope) -> None:
        ticket.tier, ticket.queue = placement.tier, placement.queue
        ticket.communication_owner, ticket.urgent, ticket.shadow = (
            placement.communication_owner,
            placement.urgent,
            placement.shadow,
        )
        ticket.queued_at, ticket.cycle = cause.time, cause.cycle
        ticket.routed_id = derive_id(cause.id, "routed")
        self.changed[ticket.ticket_id] = ticket
        desk = self.desks[ticket.tier]
        self._queue(ticket)
        self.fill(desk, placing=ticket)
        self.outcome.routed.append(
            Routed(
                ticket.ticket_id,
                ticket.tier,
                ticket.queue,
                ticket.assignee,
                placement.reason,
                ticket.communication_owner,
                ticket.routed_id,
                cause.id,
                ticket.correlation_id,
                ticket.cycle,
            )
        )

    def _claim(self, ticket: Ticket, claim: TicketClaimRequested, cause: Envelope) -> None:
        spec = self.charter.tiers.get(ticket.tier)
        if not ticket.shadow or ticket.resolved:
            self.outcome.ignored["not_in_shadow_queue"] += 1
            return
        if spec is None or not spec.may_claim(claim.tier, ticket.tier):
            self.outcome.ignored["claim_not_allowed"] += 1
            return
        ticket.queue, ticket.shadow, ticket.urgent, ticket.queued_at = spec.queue, False, True, cause.time
        ticket.routed_id = derive_id(cause.id, "routed")
        self.changed[ticket.ticket_id] = ticket
        desk = self.desks[ticket.tier]
        seat = desk.seats.get(claim.agent_id)
        if claim.tier == ticket.tier and seat is not None and seat.open < desk.cap:
            desk.take(claim.agent_id)
            ticket.assignee = claim.agent_id
        else:
            self._queue(ticket)
            self.fill(desk, placing=ticket)
        self.outcome.routed.append(
            Routed(
                ticket.ticket_id,
                ticket.tier,
                ticket.queue,
                ticket.assignee,
                RoutingReason.CLAIM,
                ticket.communication_owner,
                ticket.routed_id,
                cause.id,
                ticket.correlation_id,
                ticket.cycle,
            )
        )

    def _leave(self, ticket: Ticket) -> Desk | None:
        """The ticket leaves its agent: the seat frees. Returns the desk to fill once the
        ticket is placed elsewhere or resolved (so it cannot take its own seat back)."""
        if ticket.assignee is None:
            return None
        desk = self.desks[ticket.tier]
        desk.release(ticket.assignee)
        ticket.assignee = None
        return desk

    def _queue(self, ticket: Ticket) -> None:
        desk = self.desks.get(ticket.tier)
        if desk is not None and ticket.waiting and desk.takes(ticket.urgent):
            heapq.heappush(desk.line, (ticket.priority, ticket.queued_at, ticket.ticket_id))

    def _next_in_line(self, desk: Desk) -> Ticket | None:
        """Pop the first ticket still waiting in this line (entries of tickets that were
        assigned, left, or re-queued since are skipped)."""
        while desk.line:
            _, queued_at, ticket_id = heapq.heappop(desk.line)
            ticket = self.tickets[ticket_id]
            if ticket.tier == desk.tier and ticket.waiting and ticket.queued_at == queued_at:
                return ticket
        return None


def dispatch(
    charter: Charter,
    events: Sequence[Envelope],
    tickets: dict[str, Ticket],
    desks: dict[Tier, Desk],
    waiting: Iterable[Ticket] = (),
) -> Outcome:
    """Apply `events` (fresh, fitting, in stream order) to `tickets` (the batch's known tickets)
    over the locked `desks` (every tier in `touched`), whose first `wanted` waiting tickets
    are `waiting`. Updates the tickets and desks given; returns what changed and what to emit."""
    floor = _Floor(charter, desks, tickets, waiting)
    for envelope in events:
        floor.apply(envelope)
    return floor.result()


def assign_waiting(charter: Charter, desk: Desk, waiting: Iterable[Ticket]) -> Outcome:
    """The periodic pass: agents came on shift, office hours opened, or capacity freed
    elsewhere; `waiting` are the first `desk.free()` tickets in the tier's line."""
    floor = _Floor(charter, {desk.tier: desk}, {}, waiting)
    floor.fill(desk)
    return floor.result()
