"""Charters and event builders for router's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from shared.emitters import emitter
from shared.envelope import Envelope, derive_id
from shared.events import (
    BounceReason,
    EscalationReason,
    Priority,
    TicketBounced,
    TicketEscalated,
    TicketReopened,
    TicketResolved,
    Tier,
)
from tests.builders import ticket_created

CHARTERS = Path(__file__).resolve().parents[2] / "charters"
TINY = CHARTERS / "tiny.yaml"
BURST = CHARTERS / "burst.yaml"
# Tuesday 2026-11-24, 10:30 in Berlin: L1's early shift, L2's business hours and L3's
# engineering hours are open; L3's office hours (09:15-09:45) are not.
TUESDAY = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
_ids = count()


class Events:
    """Envelopes as the other services would publish them; times advance a second per event."""

    def __init__(self, start: datetime = TUESDAY) -> None:
        self.now = start

    def _wrap(self, event, correlation_id: str | None = None) -> Envelope:
        self.now += timedelta(seconds=1)
        event_id = f"evt-{next(_ids)}"
        return Envelope(
            event=event,
            id=event_id,
            source=emitter(event.TYPE),
            time=self.now,
            correlation_id=correlation_id or derive_id(event.ticket_id, "first"),
        )

    def created(
        self, ticket_id: str, intent: str = "login", priority: Priority = Priority.P3, blocked: bool = False
    ) -> Envelope:
        return self._wrap(ticket_created(ticket_id, self.now, intent=intent, priority=priority, blocked=blocked))

    def escalated(
        self, ticket_id: str, from_tier: Tier, to_tier: Tier, reason: EscalationReason = EscalationReason.HANDOFF
    ) -> Envelope:
        return self._wrap(TicketEscalated(ticket_id=ticket_id, from_tier=from_tier, to_tier=to_tier, reason=reason))

    def bounced(
        self, ticket_id: str, from_tier: Tier, to_tier: Tier, reason: BounceReason = BounceReason.RETURNED_WITH_FIX
    ) -> Envelope:
        return self._wrap(TicketBounced(ticket_id=ticket_id, from_tier=from_tier, to_tier=to_tier, reason=reason))

    def resolved(self, ticket_id: str, tier: Tier = Tier.L1) -> Envelope:
        return self._wrap(TicketResolved(ticket_id=ticket_id, tier=tier, agent_id="someone", resolution_code="fixed"))

    def reopened(self, ticket_id: str) -> Envelope:
        return self._wrap(TicketReopened(ticket_id=ticket_id))
