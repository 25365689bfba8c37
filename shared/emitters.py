"""Who may emit each event type (`EMITTED_BY`, the definition): consumers dead-letter an event
whose `ce_source` may not emit its `ce_type`, so a producer that can reach the events topic
cannot speak for another service (the broker's ACLs keep everyone else off the topic).

Invariants (tests: tests/unit/test_emitters.py, tests/integration/kit/test_emitters.py):
1. Every type of the catalogue has exactly one emitter; a type outside it has none.
2. The verdict looks at the two headers only, so every consumer and a replay agree.
3. A reason never quotes the record's own `ce_source` unless it is one of ours (it is
   whatever the producer wrote).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shared import events

INTAKE = "ladder/intake"
ROUTER = "ladder/router"
ESCALATION = "ladder/escalation"
SERVICES = frozenset({INTAKE, ROUTER, ESCALATION})

EMITTED_BY: Mapping[str, str] = MappingProxyType(
    {
        events.TicketCreated.TYPE: INTAKE,
        events.TicketResponded.TYPE: INTAKE,
        events.TicketEscalationRequested.TYPE: INTAKE,
        events.TicketReturnRequested.TYPE: INTAKE,
        events.TicketResolved.TYPE: INTAKE,
        events.TicketReopened.TYPE: INTAKE,
        events.TicketRated.TYPE: INTAKE,
        events.TicketClaimRequested.TYPE: INTAKE,
        events.TicketRouted.TYPE: ROUTER,
        events.TicketEscalated.TYPE: ESCALATION,
        events.TicketBounced.TYPE: ESCALATION,
        events.TicketSlaBreached.TYPE: ESCALATION,
    }
)


def emitter(event_type: str) -> str:
    """The `ce_source` that may emit `event_type` (KeyError outside the catalogue)."""
    return EMITTED_BY[event_type]


def not_allowed(source: str, event_type: str) -> str | None:
    """Why `source` may not emit `event_type`, or None when it may. Pure."""
    allowed = EMITTED_BY.get(event_type)
    if allowed is None:
        return f"{event_type} is not in the event catalogue"
    if source == allowed:
        return None
    who = source if source in SERVICES else "not a Ladder service"
    return f"{event_type} is emitted by {allowed} only; ce_source is {who}"
