"""Which events still fit a ticket: the one staleness rule every consumer applies.

Services race (an SLA breach fired just before the resolution landed); stream order is
the truth, so an event that lands when it no longer fits the ticket is *stale*: ignored
by every consumer alike and counted. The rule looks only at what the stream itself says,
so every consumer (and a replay) reaches the same verdict.

Invariants:
1. `ticket.created` fits only a ticket not seen before; anything else needs a known ticket.
2. An open ticket takes everything but `ticket.reopened` and `ticket.rated`.
3. A resolved ticket takes only `ticket.reopened` and one `ticket.rated` per resolution.
4. Cycles: a reopen starts a new cycle of the ticket. An event of an earlier cycle than the
   ticket's current one (a breach, or what it caused, landing after the reopen) is stale,
   whatever its type, before any other rule. The current cycle is the highest cycle among
   the events that fit; a `ticket.created` without one starts cycle 1, a `ticket.reopened`
   without one starts the next. An event whose cycle is unknown (no `ce_cycle`: written
   before cycles existed) belongs to the current cycle.
5. Tier claims: a `ticket.responded` names the tier that replied, a `ticket.return_requested`
   the tier that hands the ticket back. The claim fits when, at that point of the stream,
   the tier owns the ticket (the tier of its latest `ticket.routed`) or, for a response,
   is its communication owner (the same routing's `communication_owner`). Nobody owns a
   ticket before its first routing nor after a resolution until it is routed again. A claim
   that does not fit is ignored by every consumer that reads it and counted
   `tier_claim_mismatch`; it moves nothing. Not judged here: an escalation request, which
   escalation always answers (a request from a tier that does not own the ticket is
   bounced `owner`, and every consumer sees that answer), and a resolution, which ends the
   cycle whatever tier it names and is credited to the owner (docs/kpis.md): intake told
   the client the ticket is resolved, so no consumer may keep it open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from shared.events import Event, TicketResponded, TicketReturnRequested, TicketRouted, Tier


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Stale(StrEnum):
    """Why an event did not fit (label values of the ignored-events metrics)."""

    UNKNOWN_TICKET = "unknown_ticket"
    TICKET_EXISTS = "ticket_exists"
    TICKET_RESOLVED = "ticket_resolved"
    TICKET_OPEN = "ticket_open"
    ALREADY_RATED = "already_rated"
    EARLIER_CYCLE = "earlier_cycle"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    status: Status = Status.OPEN
    rated: bool = False  # rated since the last resolution
    cycle: int = 1  # the ticket's current cycle (1 until the first reopen)
    owner: Tier | None = None  # the tier of the latest routing (None: nobody owns it now)
    communication_owner: Tier | None = None  # that routing's communication owner
    # False only for a lifecycle stored before owners were tracked: until its next routing
    # no claim on it can be judged, so every claim fits (as before).
    owners_known: bool = True


TIER_CLAIM_MISMATCH = "tier_claim_mismatch"  # the ignored-events label of invariant 5


CREATED, RESOLVED, REOPENED, RATED = "ticket.created", "ticket.resolved", "ticket.reopened", "ticket.rated"
# The types that change a lifecycle: a consumer tracks them even when it handles nothing else.
LIFECYCLE_TYPES = frozenset({CREATED, RESOLVED, REOPENED, RATED})
# The claims invariant 5 judges, and what a consumer reading any of them tracks for that.
CLAIM_TYPES = frozenset({TicketResponded.TYPE, TicketReturnRequested.TYPE})
OWNER_TYPES = frozenset({TicketRouted.TYPE})


def advance(state: Lifecycle | None, event_type: str, cycle: int | None = None) -> Lifecycle | Stale:
    """The ticket's lifecycle after an event of `event_type` and `cycle` (None: unknown), or
    why that event is stale."""
    if event_type == CREATED:
        return Lifecycle(cycle=cycle or 1) if state is None else Stale.TICKET_EXISTS
    if state is None:
        return Stale.UNKNOWN_TICKET
    if cycle is not None and cycle < state.cycle:
        return Stale.EARLIER_CYCLE
    current = state.cycle if cycle is None else cycle  # from here on never below the state's
    if state.status is Status.RESOLVED:
        if event_type == REOPENED:
            return replace(state, status=Status.OPEN, rated=False, cycle=state.cycle + 1 if cycle is None else cycle)
        if event_type == RATED:
            return Stale.ALREADY_RATED if state.rated else replace(state, rated=True, cycle=current)
        return Stale.TICKET_RESOLVED
    if event_type in (REOPENED, RATED):
        return Stale.TICKET_OPEN
    if event_type == RESOLVED:  # nobody owns a resolved ticket (invariant 5)
        return replace(state, status=Status.RESOLVED, rated=False, cycle=current, owner=None, communication_owner=None)
    return state if current == state.cycle else replace(state, cycle=current)


def claim_fits(state: Lifecycle, event: Event) -> bool:
    """Whether the tier `event` claims fits the ticket in `state` (invariant 5). Pure."""
    if not state.owners_known:
        return True
    if isinstance(event, TicketResponded):
        return state.owner is not None and event.tier in (state.owner, state.communication_owner)
    if isinstance(event, TicketReturnRequested):
        return state.owner is not None and event.from_tier == state.owner
    return True


def judge(state: Lifecycle | None, event: Event, cycle: int | None = None) -> Lifecycle | Stale | None:
    """The ticket's lifecycle after `event` (invariants 1-5): its new state, why it is stale,
    or None when it claims a tier that does not fit (ignored, counted `tier_claim_mismatch`,
    the state unchanged). Pure: every consumer, and a replay, reaches the same verdict."""
    verdict = advance(state, event.TYPE, cycle)
    if isinstance(verdict, Stale) or state is None:
        return verdict
    if not claim_fits(state, event):
        return None
    if isinstance(event, TicketRouted):
        return replace(verdict, owner=event.tier, communication_owner=event.communication_owner, owners_known=True)
    return verdict
