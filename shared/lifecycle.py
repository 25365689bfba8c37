"""Which events still fit a ticket: the one staleness rule every consumer applies.

Services race (an SLA breach fired just before the resolution landed); stream order is
the truth, so an event that lands when it no longer fits the ticket is *stale*: ignored
by every consumer alike and counted. The rule looks only at what the stream itself says,
so every consumer (and a replay) reaches the same verdict.

Invariants:
1. `ticket.created` fits only a ticket not seen before; anything else needs a known ticket.
2. An open ticket takes everything but `ticket.reopened` and `ticket.rated`.
3. A resolved ticket takes only `ticket.reopened` and one `ticket.rated` per resolution.
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


@dataclass(frozen=True, slots=True)
class Lifecycle:
    status: Status = Status.OPEN
    rated: bool = False  # rated since the last resolution


CREATED, RESOLVED, REOPENED, RATED = "ticket.created", "ticket.resolved", "ticket.reopened", "ticket.rated"
# The types that change a lifecycle: a consumer tracks them even when it handles nothing else.
LIFECYCLE_TYPES = frozenset({CREATED, RESOLVED, REOPENED, RATED})


def advance(state: Lifecycle | None, event_type: str) -> Lifecycle | Stale:
    """The ticket's lifecycle after `event_type`, or why that event is stale."""
    if event_type == CREATED:
        return Lifecycle() if state is None else Stale.TICKET_EXISTS
    if state is None:
        return Stale.UNKNOWN_TICKET
    if state.status is Status.RESOLVED:
        if event_type == REOPENED:
            return Lifecycle(Status.OPEN)
        if event_type == RATED:
            return Stale.ALREADY_RATED if state.rated else Lifecycle(Status.RESOLVED, rated=True)
        return Stale.TICKET_RESOLVED
    if event_type in (REOPENED, RATED):
        return Stale.TICKET_OPEN
    if event_type == RESOLVED:
        return Lifecycle(Status.RESOLVED)
    return state
