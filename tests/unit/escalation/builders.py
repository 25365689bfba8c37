"""Events and tickets for escalation's tests, built the way intake and router build them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.charter import Charter, load_charter
from shared.emitters import emitter
from shared.envelope import Envelope, new_id
from shared.events import (
    Event,
    HandoffChecklist,
    Priority,
    RoutingReason,
    TicketEscalationRequested,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
    TicketRouted,
    Tier,
)
from tests.builders import ticket_created

CHARTERS = Path(__file__).resolve().parents[2] / "charters"
DEFAULT = load_charter()  # deploy/charter/default.yaml
ALWAYS = load_charter(CHARTERS / "escalation-24x7.yaml")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday
BERLIN = ZoneInfo("Europe/Berlin")  # the default charter's calendars
COMPLETE = HandoffChecklist(
    impact="one customer cannot log in",
    steps_attempted=["reset password"],
    attachments=["req-42"],
    problem_statement="SSO login fails with 500",
)
HYPOTHESIS = "IdP certificate rotated"


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def envelope(event: Event, at: datetime = T0, event_id: str | None = None, correlation_id: str = "corr") -> Envelope:
    return Envelope(
        event=event, id=event_id or new_id(), source=emitter(event.TYPE), time=at, correlation_id=correlation_id
    )


def created(
    ticket: str = "t-1",
    *,
    priority: Priority = Priority.P2,
    intent: str = "login",
    blocked: bool = False,
    at: datetime = T0,
) -> Envelope:
    return envelope(ticket_created(ticket, at, intent=intent, priority=priority, blocked=blocked), at)


def routed(
    tier: Tier,
    ticket: str = "t-1",
    *,
    at: datetime = T0,
    reason: RoutingReason = RoutingReason.RULE,
    communication_owner: Tier | None = None,
    event_id: str | None = None,
) -> Envelope:
    return envelope(
        TicketRouted(ticket_id=ticket, tier=tier, queue="q", reason=reason, communication_owner=communication_owner),
        at,
        event_id,
    )


def responded(tier: Tier, ticket: str = "t-1", *, at: datetime = T0) -> Envelope:
    return envelope(TicketResponded(ticket_id=ticket, tier=tier, agent_id="ann"), at)


def requested(
    source: Tier,
    target: Tier,
    ticket: str = "t-1",
    *,
    checklist: HandoffChecklist = COMPLETE,
    hypothesis: str | None = HYPOTHESIS,
    at: datetime = T0,
) -> Envelope:
    return envelope(
        TicketEscalationRequested(
            ticket_id=ticket,
            from_tier=source,
            to_tier=target,
            agent_id="ann",
            checklist=checklist,
            hypothesis=hypothesis,
        ),
        at,
    )


def returned(source: Tier, ticket: str = "t-1", *, fix: str = "cleared the cache", at: datetime = T0) -> Envelope:
    return envelope(
        TicketReturnRequested(ticket_id=ticket, from_tier=source, to_tier=Tier.L1, agent_id="bo", fix_summary=fix), at
    )


def resolved(tier: Tier, ticket: str = "t-1", *, at: datetime = T0) -> Envelope:
    return envelope(TicketResolved(ticket_id=ticket, tier=tier, agent_id="ann", resolution_code="fixed"), at)


def reopened(ticket: str = "t-1", *, at: datetime = T0) -> Envelope:
    return envelope(TicketReopened(ticket_id=ticket), at)


def charter_with(base: Charter, **handoffs: object) -> Charter:
    return base.model_copy(update={"handoffs": base.handoffs.model_copy(update=handoffs)})
