"""The tier KPIs of docs/kpis.md, computed from the event stream a second time, by a
deliberately plain implementation (in memory, exact fractions, no code shared with the
metrics service), so the simulator can check what `/metrics` exports, digit for digit.

Input: the events of `support.ticket-events` in partition order (a ticket's events share a
partition, so per-ticket order is the stream's). Output: the Prometheus samples the metrics
service must export, keyed by (metric name, sorted labels).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

WINDOWS: dict[str, timedelta | None] = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
ALWAYS_SHOWN = ("L1", "L2", "L3")
ALL_TIERS = ("L0", "L1", "L2", "L3", "L4")
Sample = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    ticket: str
    time: datetime
    body: dict[str, Any]
    cycle: int | None = None  # ce_cycle; None: the record has none


@dataclass
class _Visit:
    tier: str
    start: datetime
    requested: bool = False
    responded: bool = False


@dataclass
class _Ticket:
    cycle_start: datetime
    cycle: int = 1
    owner: str | None = None  # the latest routing's tier (None: not routed since created/resolved)
    speaker: str | None = None  # that routing's communication owner
    resolved: bool = False
    rated: bool = False
    visit: _Visit | None = None
    resolved_by: str | None = None  # the tier of the latest resolution (None: nobody owned it)
    first_contact: list[Any] | None = None  # the visit-end sample a reopen would void
    escalated: bool = False
    first_resolution: datetime | None = None


@dataclass
class Stream:
    """Every sample, with the time that completes it."""

    arrivals: list[tuple[str, datetime]] = field(default_factory=list)
    visit_ends: list[list[Any]] = field(default_factory=list)  # [tier, at, resolved at first contact]
    escalations: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    requests: list[tuple[str, datetime]] = field(default_factory=list)
    bounces: list[tuple[str, str, datetime]] = field(default_factory=list)
    resolutions: list[tuple[str, datetime, Fraction]] = field(default_factory=list)
    reopens: list[tuple[str, datetime]] = field(default_factory=list)
    responses: list[tuple[str, datetime, Fraction]] = field(default_factory=list)
    ratings: list[tuple[str, datetime, int]] = field(default_factory=list)
    breaches: Counter[tuple[str, str]] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    tickets: dict[str, _Ticket] = field(default_factory=dict)


def _seconds(delta: timedelta) -> Fraction:
    return Fraction(max(delta // timedelta(microseconds=1), 0), 1_000_000)


def _fits(ticket: _Ticket | None, kind: str, cycle: int | None) -> bool:
    """The staleness rule, written out again (docs/architecture/delivery.md): an event of a cycle before
    the ticket's is stale; an event without a cycle belongs to the current one."""
    if kind == "ticket.created":
        return ticket is None
    if ticket is None:
        return False
    if cycle is not None and cycle < ticket.cycle:
        return False
    if ticket.resolved:
        return kind == "ticket.reopened" or (kind == "ticket.rated" and not ticket.rated)
    return kind not in ("ticket.reopened", "ticket.rated")


def _claim_fits(ticket: _Ticket, event: Event) -> bool:
    """The tier-claim rule, written out again (docs/kpis.md): a response by the owner or the
    communication owner, a return by the owner; nobody owns an unrouted or resolved ticket."""
    if event.type == "ticket.responded":
        return ticket.owner is not None and event.body["tier"] in (ticket.owner, ticket.speaker)
    if event.type == "ticket.return_requested":
        return ticket.owner is not None and event.body["from_tier"] == ticket.owner
    return True


def replay(events: Iterable[Event]) -> Stream:
    stream = Stream()
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            stream.ignored["duplicate"] += 1
            continue
        seen.add(event.id)
        ticket = stream.tickets.get(event.ticket)
        if not _fits(ticket, event.type, event.cycle):
            stream.ignored["stale"] += 1
        elif ticket is None:
            stream.tickets[event.ticket] = _Ticket(cycle_start=event.time, cycle=event.cycle or 1)
        elif not _claim_fits(ticket, event):
            stream.ignored["tier_claim_mismatch"] += 1
        else:
            if event.type == "ticket.reopened":
                ticket.cycle = event.cycle or ticket.cycle + 1
            else:
                ticket.cycle = max(ticket.cycle, event.cycle or 0)  # the highest cycle that fits
            _apply(stream, ticket, event)
    return stream


def _end_visit(stream: Stream, ticket: _Ticket, at: datetime, resolved: bool) -> None:
    if ticket.visit is not None:
        sample = [ticket.visit.tier, at, resolved and not ticket.visit.requested]
        stream.visit_ends.append(sample)
        ticket.first_contact = sample if resolved else None
        ticket.visit = None


def _apply(stream: Stream, ticket: _Ticket, event: Event) -> None:
    body, at = event.body, event.time
    if event.type == "ticket.routed":
        ticket.owner, ticket.speaker = body["tier"], body.get("communication_owner")
        if ticket.visit is None or ticket.visit.tier != body["tier"]:
            _end_visit(stream, ticket, at, resolved=False)
            ticket.visit = _Visit(body["tier"], at)
            stream.arrivals.append((body["tier"], at))
    elif event.type == "ticket.responded":
        visit = ticket.visit
        if visit is not None and body["tier"] == visit.tier and not visit.responded:
            visit.responded = True
            stream.responses.append((visit.tier, at, _seconds(at - visit.start)))
    elif event.type == "ticket.escalation_requested":
        stream.requests.append((body["from_tier"], at))
        if ticket.visit is not None:
            ticket.visit.requested = True
    elif event.type == "ticket.escalated":
        ticket.escalated = True
        stream.escalations.append((body["from_tier"], body["to_tier"], body["reason"], at))
    elif event.type == "ticket.bounced":
        stream.bounces.append((body["to_tier"], body["reason"], at))
    elif event.type == "ticket.sla_breached":
        stream.breaches[(body["tier"], body["kind"])] += 1
    elif event.type == "ticket.resolved":
        owner = ticket.visit.tier if ticket.visit is not None else None
        if owner is not None:
            stream.resolutions.append((owner, at, _seconds(at - ticket.cycle_start)))
        ticket.first_contact = None
        _end_visit(stream, ticket, at, resolved=True)
        ticket.resolved, ticket.rated, ticket.resolved_by = True, False, owner
        ticket.owner = ticket.speaker = None
        ticket.first_resolution = ticket.first_resolution or at
    elif event.type == "ticket.reopened":
        if ticket.resolved_by is not None:
            stream.reopens.append((ticket.resolved_by, at))
        if ticket.first_contact is not None:
            ticket.first_contact[2] = False  # reopened after that resolution: no first contact
        ticket.resolved, ticket.cycle_start, ticket.first_contact = False, at, None
    elif event.type == "ticket.rated":
        ticket.rated = True
        if ticket.resolved_by is not None:
            stream.ratings.append((ticket.resolved_by, at, body["score"]))


def _nearest_rank(values: list[Fraction], q: Fraction) -> Fraction:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def expected_samples(events: Iterable[Event], now: datetime) -> dict[Sample, float]:
    """Every KPI sample `/metrics` must export for `events` at `now`, exactly."""
    s = replay(events)
    out: dict[Sample, float] = {}

    def put(name: str, value: float | Fraction, **labels: str) -> None:
        out[(name, tuple(sorted(labels.items())))] = float(value)

    def ratio(name: str, top: int, bottom: int, **labels: str) -> None:
        if bottom:  # a ratio with no denominator yet is absent
            put(name, Fraction(top, bottom), **labels)

    seen = {t for t, _ in s.arrivals} | {t for _, t, _ in s.bounces} | {t for t, *_ in s.escalations}
    seen |= {t for t, _ in s.requests} | {t for t, _ in s.breaches}
    tiers = [t for t in ALL_TIERS if t in seen or t in ALWAYS_SHOWN]
    backlog = Counter(t.visit.tier for t in s.tickets.values() if t.visit is not None)
    for tier in tiers:
        put("support_tier_arrivals_total", sum(1 for t, _ in s.arrivals if t == tier), tier=tier)
        resolved = [d for t, _, d in s.resolutions if t == tier]
        put("support_resolutions_total", len(resolved), tier=tier)
        put("support_resolution_duration_seconds_count", len(resolved), tier=tier)
        put("support_resolution_duration_seconds_sum", sum(resolved, Fraction(0)), tier=tier)
        put("support_reopens_total", sum(1 for t, _ in s.reopens if t == tier), tier=tier)
        put("support_backlog_tickets", backlog[tier], tier=tier)
        for reason in ("handoff_incomplete", "returned_with_fix"):
            put(
                "support_bounces_total",
                sum(1 for t, r, _ in s.bounces if (t, r) == (tier, reason)),
                tier=tier,
                reason=reason,
            )
    for tier in ALL_TIERS:
        for kind in ("first_response", "time_in_tier"):
            put("support_sla_breaches_total", s.breaches[(tier, kind)], tier=tier, kind=kind)
    for (source, target, reason), n in Counter((a, b, r) for a, b, r, _ in s.escalations).items():
        put("support_escalations_total", n, tier=source, to_tier=target, reason=reason)
    for reason in ("duplicate", "stale", "tier_claim_mismatch"):
        put("support_events_ignored_total", s.ignored[reason], reason=reason)

    for window, span in WINDOWS.items():

        def inside(at: datetime, span: timedelta | None = span) -> bool:
            return span is None or at >= now - span

        for tier in tiers:
            arrivals = sum(1 for t, at in s.arrivals if t == tier and inside(at))
            ended = [fcr for t, at, fcr in s.visit_ends if t == tier and inside(at)]
            ratio("support_first_contact_resolution_ratio", sum(ended), len(ended), tier=tier, window=window)
            escalated = sum(1 for a, _, _, at in s.escalations if a == tier and inside(at))
            ratio("support_escalation_ratio", escalated, arrivals, tier=tier, window=window)
            requested = sum(1 for a, at in s.requests if a == tier and inside(at))
            for reason, bottom in (("returned_with_fix", escalated), ("handoff_incomplete", requested)):
                top = sum(1 for t, r, at in s.bounces if (t, r) == (tier, reason) and inside(at))
                ratio("support_bounce_back_ratio", top, bottom, tier=tier, reason=reason, window=window)
            durations = [d for t, at, d in s.resolutions if t == tier and inside(at)]
            reopens = sum(1 for t, at in s.reopens if t == tier and inside(at))
            ratio("support_reopen_ratio", reopens, len(durations), tier=tier, window=window)
            for q in ("0.5", "0.9") if durations else ():
                put(
                    "support_resolution_time_seconds",
                    _nearest_rank(durations, Fraction(q)),
                    tier=tier,
                    window=window,
                    quantile=q,
                )
            waits = [d for t, at, d in s.responses if t == tier and inside(at)]
            if waits:
                put(
                    "support_first_response_time_seconds",
                    sum(waits, Fraction(0)) / len(waits),
                    tier=tier,
                    window=window,
                    statistic="mean",
                )
                put(
                    "support_first_response_time_seconds",
                    _nearest_rank(waits, Fraction(1, 2)),
                    tier=tier,
                    window=window,
                    statistic="median",
                )
            scores = [score for t, at, score in s.ratings if t == tier and inside(at)]
            ratio(
                "support_satisfaction_ratio",
                sum(1 for score in scores if score >= 4),
                len(scores),
                tier=tier,
                window=window,
            )
        first = [t for t in s.tickets.values() if t.first_resolution is not None and inside(t.first_resolution)]
        ratio(
            "support_resolved_without_escalation_ratio",
            sum(1 for t in first if not t.escalated),
            len(first),
            window=window,
        )
    return out


# The metric names this module predicts: every KPI of docs/kpis.md.
PREDICTED = (
    "support_tier_arrivals_total",
    "support_escalations_total",
    "support_bounces_total",
    "support_resolutions_total",
    "support_reopens_total",
    "support_sla_breaches_total",
    "support_first_contact_resolution_ratio",
    "support_escalation_ratio",
    "support_reopen_ratio",
    "support_satisfaction_ratio",
    "support_bounce_back_ratio",
    "support_resolution_time_seconds",
    "support_resolution_duration_seconds_count",
    "support_resolution_duration_seconds_sum",
    "support_first_response_time_seconds",
    "support_resolved_without_escalation_ratio",
    "support_backlog_tickets",
    "support_events_ignored_total",
)
