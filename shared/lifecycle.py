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
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


CREATED, RESOLVED, REOPENED, RATED = "ticket.created", "ticket.resolved", "ticket.reopened", "ticket.rated"
# The types that change a lifecycle: a consumer tracks them even when it handles nothing else.
LIFECYCLE_TYPES = frozenset({CREATED, RESOLVED, REOPENED, RATED})


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
            return Lifecycle(Status.OPEN, cycle=state.cycle + 1 if cycle is None else cycle)
        if event_type == RATED:
            return Stale.ALREADY_RATED if state.rated else Lifecycle(Status.RESOLVED, True, current)
        return Stale.TICKET_RESOLVED
    if event_type in (REOPENED, RATED):
        return Stale.TICKET_OPEN
    if event_type == RESOLVED:
        return Lifecycle(Status.RESOLVED, cycle=current)
    return state if current == state.cycle else Lifecycle(state.status, state.rated, current)
