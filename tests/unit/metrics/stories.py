"""Ticket histories for the metrics tests: a `Story` is one ticket's events in stream order,
as the real envelopes (ids `<ticket>/<n>`, times in minutes after the ticket's creation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared import envelope as ce
from shared.emitters import emitter
from shared.events import (
    BounceReason,
    EscalationReason,
    Event,
    HandoffChecklist,
    RoutingReason,
    SlaKind,
    TicketBounced,
    TicketEscalated,
    TicketEscalationRequested,
    TicketRated,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
    TicketRouted,
    TicketSlaBreached,
    Tier,
)
from tests.builders import ticket_created

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Story:
    def __init__(self, ticket_id: str, created_at: datetime = T0) -> None:
        self.ticket_id, self.start = ticket_id, created_at
        self.events: list[ce.Envelope] = []
        self.add(0, ticket_created(ticket_id, created_at))

    def add(self, minutes: float, event: Event, event_id: str | None = None) -> Story:
        self.events.append(
            ce.Envelope(
                event=event,
                id=event_id or f"{self.ticket_id}/{len(self.events)}",
                source=emitter(event.TYPE),
                time=self.start + timedelta(minutes=minutes),
                correlation_id=f"{self.ticket_id}/0",
            )
        )
        return self

    def routed(self, minutes: float, tier: str, reason: str = "rule", speaker: str | None = None) -> Story:
        return self.add(
            minutes,
            TicketRouted(
                ticket_id=self.ticket_id,
                tier=Tier(tier),
                queue="q",
                reason=RoutingReason(reason),
                communication_owner=Tier(speaker) if speaker else None,
            ),
        )

    def responded(self, minutes: float, tier: str) -> Story:
        return self.add(minutes, TicketResponded(ticket_id=self.ticket_id, tier=Tier(tier), agent_id="ann"))

    def requested(self, minutes: float, from_tier: str, to_tier: str) -> Story:
        return self.add(
            minutes,
            TicketEscalationRequested(
                ticket_id=self.ticket_id,
                from_tier=Tier(from_tier),
                to_tier=Tier(to_tier),
                agent_id="ann",
                checklist=HandoffChecklist(),
                hypothesis="h",
            ),
        )

    def escalated(self, minutes: float, from_tier: str, to_tier: str, reason: str = "handoff") -> Story:
        return self.add(
            minutes,
            TicketEscalated(
                ticket_id=self.ticket_id,
                from_tier=Tier(from_tier),
                to_tier=Tier(to_tier),
                reason=EscalationReason(reason),
            ),
        )

    def return_requested(self, minutes: float, from_tier: str, to_tier: str) -> Story:
        return self.add(
            minutes,
            TicketReturnRequested(
                ticket_id=self.ticket_id,
                from_tier=Tier(from_tier),
                to_tier=Tier(to_tier),
                agent_id="bo",
                fix_summary="fix",
            ),
        )

    def bounced(self, minutes: float, from_tier: str, to_tier: str, reason: str) -> Story:
        return self.add(
            minutes,
            TicketBounced(
                ticket_id=self.ticket_id, from_tier=Tier(from_tier), to_tier=Tier(to_tier), reason=BounceReason(reason)
            ),
        )

    def resolved(self, minutes: float, tier: str = "L1") -> Story:
        return self.add(
            minutes, TicketResolved(ticket_id=self.ticket_id, tier=Tier(tier), agent_id="ann", resolution_code="fixed")
        )

    def reopened(self, minutes: float) -> Story:
        return self.add(minutes, TicketReopened(ticket_id=self.ticket_id))

    def rated(self, minutes: float, score: int) -> Story:
        return self.add(minutes, TicketRated(ticket_id=self.ticket_id, score=score))

    def breached(self, minutes: float, tier: str, kind: str = "first_response") -> Story:
        return self.add(
            minutes,
            TicketSlaBreached(
                ticket_id=self.ticket_id,
                tier=Tier(tier),
                kind=SlaKind(kind),
                deadline=self.start + timedelta(minutes=minutes),
            ),
        )
