"""SLA timers: when a visit's targets expire, and what a breach does.

A *visit* of a ticket at tier T starts with a `ticket.routed` to T while the ticket was not
at T (first routing, escalation, bounce, or any routing after a reopen: a new cycle) and
arms two timers, `first_response` and `time_in_tier`, for T and the ticket's priority.

Invariants (tests: tests/unit/escalation/test_sla.py, test_timers_once.py; on PostgreSQL:
tests/integration/escalation/test_timer_store.py):
1. A timer is due after its target counted in T's working hours from the visit's start
   (the routed event's time): `add_working_time`.
2. A timer is named by the routed event that armed it and its kind: arming it again is a
   no-op, so a timer that fired or was cancelled stays so (redelivery cannot revive it).
3. A timer settles once: pending -> fired, or pending -> cancelled, never back.
4. It fires only while pending, due (by the stream time of its ticket's partition:
   adapters/timers.py), and its visit is the ticket's current visit with the
   ticket still owned by T. Firing emits `ticket.sla_breached` (id derived from the
   arming event and the kind) and, when T's charter escalates that kind and a tier above
   exists, `ticket.escalated` (reason sla_breach, id derived from the breach); the ticket
   then belongs to the tier above, so its other pending timer is cancelled.
5. The communication owner (a jump's or parallel-own's, when the charter gives it
   `communication_sla`) gets its own `first_response` timer on each visit of the owning
   tier, from its own tier's target and calendar: a Saturday P1 jump to L3 is due at L1's
   15 minutes, not at L3's Monday. It fires while that visit is current and the tier still
   keeps the customer updated; its breach (tier = the communication owner) alerts only.
   A timer is named by its arming event, kind and tier.
6. A timer remembers the cycle of the routed event that armed it; what its firing emits
   carries that cycle (`ce_cycle`), so a breach that lands after a reopen is stale everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from services.escalation.core.working_time import add_working_time
from shared.charter import BreachAction, Charter
from shared.envelope import Envelope, derive_id
from shared.events import EscalationReason, Event, SlaKind, TicketEscalated, TicketSlaBreached, Tier

if TYPE_CHECKING:
    from services.escalation.core.tickets import Ticket

SOURCE = "ladder/escalation"


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class SlaTimer:
    ticket_id: str
    kind: SlaKind
    tier: Tier
    due_at: datetime
    armed_by: str  # id of the ticket.routed that started the visit
    state: TimerState = TimerState.PENDING
    cycle: int | None = None  # of the arming event (None: armed before cycles existed)

    @property
    def key(self) -> tuple[str, SlaKind, Tier]:
        return self.armed_by, self.kind, self.tier

    def settle(self, state: TimerState) -> SlaTimer:
        """This timer moved to `state`, if it is still pending (a settled timer stays settled)."""
        return replace(self, state=state) if self.state is TimerState.PENDING else self


def arm_visit(
    charter: Charter, ticket: Ticket, tier: Tier, started_by: str, started_at: datetime, cycle: int | None = None
) -> list[SlaTimer]:
    """The timers of a visit at `tier` that started with event `started_by` at `started_at`
    in `cycle` (none for a tier the charter does not declare: it has no targets)."""
    spec = charter.tiers.get(tier)
    if spec is None:
        return []
    target = spec.sla[ticket.priority]
    hours = charter.calendar(spec.working_hours)
    timers = [
        SlaTimer(
            ticket.ticket_id,
            kind,
            tier,
            add_working_time(started_at, getattr(target, kind), hours),
            started_by,
            cycle=cycle,
        )
        for kind in SlaKind
    ]
    speaker = ticket.communication_owner
    rule = charter.communication_rule(ticket.intent, ticket.customer_blocked)
    talks = charter.tiers.get(speaker) if speaker is not None and speaker is not tier else None
    if talks is not None and rule is not None and rule.communication_sla:
        due = add_working_time(
            started_at, talks.sla[ticket.priority].first_response, charter.calendar(talks.working_hours)
        )
        timers.append(SlaTimer(ticket.ticket_id, SlaKind.FIRST_RESPONSE, speaker, due, started_by, cycle=cycle))  # type: ignore[arg-type]
    return timers


@dataclass(frozen=True, slots=True)
class Firing:
    """What a pass over one ticket's pending timers decided."""

    settled: list[SlaTimer] = field(default_factory=list)  # each timer whose state changed, in its new state
    emit: list[Envelope] = field(default_factory=list)
    owner: Tier | None = None  # the tier the ticket now belongs to, when a breach escalated it


def fire_due(
    charter: Charter, ticket: Ticket, pending: Sequence[SlaTimer], now: datetime, due_by: datetime | None = None
) -> Firing:
    """Settle the ticket's pending timers at `now`: the ones of its current visit due by
    `due_by` (the stream time of the ticket's partition; default `now`) fire, in deadline
    order; those of a visit it left are cancelled; the rest wait."""
    due_by = now if due_by is None else due_by
    firing = Firing()
    owner = ticket.owner
    for timer in sorted(pending, key=lambda t: (t.due_at, t.kind, t.tier)):
        visit = ticket.visit
        speaks = visit is not None and timer.tier is not visit.tier  # the communication owner's timer
        current = (
            visit is not None
            and visit.started_by == timer.armed_by
            and owner is visit.tier
            and (ticket.communication_owner is timer.tier if speaks else visit.tier is timer.tier)
        )
        if not current:
            firing.settled.append(timer.settle(TimerState.CANCELLED))
        elif timer.due_at <= due_by:
            firing.settled.append(timer.settle(TimerState.FIRED))
            breach = _breach(ticket, timer, now, speaks)
            firing.emit.append(breach)
            if speaks:
                continue  # the communication owner owns nothing to escalate
            spec, above = charter.tiers.get(timer.tier), charter.above(timer.tier)  # the charter may have changed
            if spec is not None and getattr(spec.on_breach, timer.kind) == BreachAction.ESCALATE and above is not None:
                escalated = TicketEscalated(
                    ticket_id=ticket.ticket_id, from_tier=timer.tier, to_tier=above, reason=EscalationReason.SLA_BREACH
                )
                firing.emit.append(answer(breach, escalated, now))
                owner = above
    return replace(firing, owner=owner) if owner is not ticket.owner else firing


def breach_id(timer: SlaTimer, communication: bool = False) -> str:
    """The owner's breach keeps the id it always had; the communication owner's names its tier."""
    suffix = f"/{timer.tier}" if communication else ""
    return derive_id(timer.armed_by, f"{TicketSlaBreached.TYPE}/{timer.kind}{suffix}")


def _breach(ticket: Ticket, timer: SlaTimer, now: datetime, communication: bool) -> Envelope:
    event = TicketSlaBreached(ticket_id=ticket.ticket_id, tier=timer.tier, kind=timer.kind, deadline=timer.due_at)
    return Envelope(
        event=event,
        id=breach_id(timer, communication),
        source=SOURCE,
        time=now,
        correlation_id=ticket.correlation_id,
        causation_id=timer.armed_by,
        cycle=timer.cycle,
    )


def answer(cause: Envelope, event: Event, now: datetime) -> Envelope:
    """What escalation emits because of `cause`: its id derived from the cause's id and
    the event's type, so a re-run emits the same id; the cause's cycle is its cycle."""
    return Envelope(
        event=event,
        id=derive_id(cause.id, event.TYPE),
        source=SOURCE,
        time=now,
        correlation_id=cause.correlation_id,
        causation_id=cause.id,
        cycle=cause.cycle,
    )
