"""How a ticket's events become KPI samples: visits, resolutions, reopens, ratings.

Pure: plain data in, plain data out. The handler loads each ticket's `TicketState`, folds
the batch's fresh events through `project_batch` in stream order, and stores the new
states and the samples. Every KPI is a sum (or a quantile) of samples selected by their
`at`, the time of the event that completes them (docs/architecture/metrics.md).

Invariants (tests: tests/unit/metrics/test_visits.py):
1. At most one open visit per ticket: per ticket, arrivals minus ended visits is 1 while a
   tier owns it and 0 otherwise.
2. A visit starts only with a routing to a tier that does not own the ticket; it ends with
   a routing to another tier or a resolution. A resolution is by the owner, whatever tier
   the client named; a ticket nobody owns resolves for no tier.
3. Folding is batch-blind and deterministic: a stream folded in any split into batches
   (state stored and loaded in between) gives the same states and samples as folded at
   once, and the same stream always gives the same result (a rebuild from a replay).
4. Corrections never overdraw: per tier and completion time, first-contact and
   without-escalation `good` sums stay between 0 and `n`.
5. Durations are never negative (a producer's clock running behind counts as 0).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from shared.envelope import Envelope
from shared.events import (
    TicketBounced,
    TicketCreated,
    TicketEscalated,
    TicketEscalationRequested,
    TicketRated,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketRouted,
    TicketSlaBreached,
)

NO_TIER = ""  # what a sample that belongs to no tier (or a resolution nobody owned) carries
# support_resolution_duration_seconds buckets: a minute to a month.
RESOLUTION_BUCKETS_S = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800, 1209600, 2592000)
_MICRO = timedelta(microseconds=1)


def _duration_bounds() -> tuple[int, ...]:
    """Inclusive upper bounds (microseconds) of the fine duration buckets: 5% apart from a
    second to ten years, plus every histogram bound, so the histogram is a sum of them."""
    bounds, bound = {seconds * 1_000_000 for seconds in RESOLUTION_BUCKETS_S}, 1_000_000.0
    while bound < 10 * 365 * 86400 * 1_000_000:
        bounds.add(round(bound))
        bound *= 1.05
    return tuple(sorted(bounds))


# A duration sample's `detail` is its fine bucket: the number of bounds below it (the last
# bucket, len(DURATION_BOUNDS_US), is unbounded). Counting samples per bucket lets a
# quantile be found by counts first, then by a short walk inside one bucket (adapters/store.py).
DURATION_BOUNDS_US = _duration_bounds()


class Kind(StrEnum):
    """What a sample counts. `tier` and `detail` say for whom; `n` counts, `good` is the
    numerator of the kind's ratio, `micros` a duration."""

    ARRIVAL = "arrival"  # a visit started at tier
    VISIT_END = "visit_end"  # a visit ended; good = resolved at first contact (a reopen takes it back)
    ESCALATION_REQUEST = "escalation_request"  # tier = from_tier
    ESCALATION = "escalation"  # tier = from_tier, detail = "to_tier/reason"
    BOUNCE = "bounce"  # tier = the tier it went back into, detail = reason
    RESOLUTION = "resolution"  # by tier; micros = cycle start -> resolution; detail = duration bucket
    REOPEN = "reopen"  # tier = the tier of the resolution it reopens
    FIRST_RESPONSE = "first_response"  # micros = visit start -> first response by the visit's tier; detail = bucket
    TICKET_RESOLVED = "ticket_resolved"  # a ticket's first resolution; good = never escalated
    RATING = "rating"  # tier of the rated resolution; good = score 4 or 5
    SLA_BREACH = "sla_breach"  # detail = kind
    IGNORED = "ignored"  # no tier; detail = reason (duplicate, stale)


DURATION_KINDS = (Kind.RESOLUTION, Kind.FIRST_RESPONSE)


class Sample(NamedTuple):  # named tuples: a batch builds thousands, and tuples build fastest
    kind: Kind
    tier: str
    at: datetime  # the time of the event that completes the sample: it decides the window
    detail: str = ""
    n: int = 1
    good: int = 0
    micros: int | None = None


class Visit(NamedTuple):
    tier: str
    started_at: datetime
    escalation_requested: bool = False
    responded: bool = False  # the visit's tier has answered the customer


class Resolution(NamedTuple):
    tier: str  # the owner when it resolved, NO_TIER if nobody owned the ticket
    at: datetime
    first_contact: bool  # counted as a first-contact resolution


class TicketState(NamedTuple):
    cycle_start: datetime  # ticket.created, or the latest ticket.reopened
    visit: Visit | None = None  # the open visit: its tier owns the ticket
    resolution: Resolution | None = None  # the latest resolution, until a reopen
    first_resolved_at: datetime | None = None
    escalated: bool = False  # a ticket.escalated ever


def micros_between(start: datetime, end: datetime) -> int:
    return max((end - start) // _MICRO, 0)


def duration_bucket(micros: int) -> int:
    """The fine bucket of a duration: the first whose bound is at least `micros`."""
    return bisect_left(DURATION_BOUNDS_US, micros)


def duration_sample(kind: Kind, tier: str, at: datetime, micros: int) -> Sample:
    return Sample(kind, tier, at, str(duration_bucket(micros)), micros=micros)


Projected = tuple[TicketState, list[Sample]]


def _routed(state: TicketState, event: TicketRouted, at: datetime) -> Projected:
    visit = state.visit
    if visit is not None and visit.tier == event.tier:  # reassignment, or a bounce back to the owner
        return state, []
    samples = [Sample(Kind.VISIT_END, visit.tier, at)] if visit is not None else []
    return state._replace(visit=Visit(event.tier, at)), [*samples, Sample(Kind.ARRIVAL, event.tier, at)]


def _responded(state: TicketState, event: TicketResponded, at: datetime) -> Projected:
    visit = state.visit
    if visit is None or visit.tier != event.tier or visit.responded:
        return state, []
    took = micros_between(visit.started_at, at)
    return (
        state._replace(visit=visit._replace(responded=True)),
        [duration_sample(Kind.FIRST_RESPONSE, visit.tier, at, took)],
    )


def _escalation_requested(state: TicketState, event: TicketEscalationRequested, at: datetime) -> Projected:
    if state.visit is not None:
        state = state._replace(visit=state.visit._replace(escalation_requested=True))
    return state, [Sample(Kind.ESCALATION_REQUEST, event.from_tier, at)]


def _escalated(state: TicketState, event: TicketEscalated, at: datetime) -> Projected:
    samples = [Sample(Kind.ESCALATION, event.from_tier, at, f"{event.to_tier}/{event.reason}")]
    if state.first_resolved_at is not None and not state.escalated:  # no longer resolved without one
        samples.append(Sample(Kind.TICKET_RESOLVED, NO_TIER, state.first_resolved_at, n=0, good=-1))
    return state._replace(escalated=True), samples


def _bounced(state: TicketState, event: TicketBounced, at: datetime) -> Projected:
    return state, [Sample(Kind.BOUNCE, event.to_tier, at, event.reason)]


def _resolved(state: TicketState, _: TicketResolved, at: datetime) -> Projected:
    visit, samples = state.visit, []
    if visit is None:
        resolution = Resolution(NO_TIER, at, first_contact=False)
    else:
        resolution = Resolution(visit.tier, at, first_contact=not visit.escalation_requested)
        samples += [
            Sample(Kind.VISIT_END, visit.tier, at, good=int(resolution.first_contact)),
            duration_sample(Kind.RESOLUTION, visit.tier, at, micros_between(state.cycle_start, at)),
        ]
    first_resolved_at = state.first_resolved_at
    if first_resolved_at is None:
        first_resolved_at = at
        samples.append(Sample(Kind.TICKET_RESOLVED, NO_TIER, at, good=int(not state.escalated)))
    return state._replace(visit=None, resolution=resolution, first_resolved_at=first_resolved_at), samples


def _reopened(state: TicketState, _: TicketReopened, at: datetime) -> Projected:
    resolution, samples = state.resolution, []
    if resolution is not None and resolution.tier != NO_TIER:
        samples.append(Sample(Kind.REOPEN, resolution.tier, at))
        if resolution.first_contact:  # taken back, in the window of the visit's end
            samples.append(Sample(Kind.VISIT_END, resolution.tier, resolution.at, n=0, good=-1))
    return state._replace(cycle_start=at, resolution=None), samples


def _rated(state: TicketState, event: TicketRated, at: datetime) -> Projected:
    if state.resolution is None or state.resolution.tier == NO_TIER:
        return state, []
    return state, [Sample(Kind.RATING, state.resolution.tier, at, good=int(event.score >= 4))]


def _sla_breached(state: TicketState, event: TicketSlaBreached, at: datetime) -> Projected:
    return state, [Sample(Kind.SLA_BREACH, event.tier, at, event.kind)]


# What each event type does to a known ticket, looked up by its name (cheaper than isinstance
# on pydantic models); types missing here (ticket.return_requested) complete no sample.
_STEPS: dict[str, Callable[[TicketState, Any, datetime], Projected]] = {
    TicketRouted.TYPE: _routed,
    TicketResponded.TYPE: _responded,
    TicketEscalationRequested.TYPE: _escalation_requested,
    TicketEscalated.TYPE: _escalated,
    TicketBounced.TYPE: _bounced,
    TicketResolved.TYPE: _resolved,
    TicketReopened.TYPE: _reopened,
    TicketRated.TYPE: _rated,
    TicketSlaBreached.TYPE: _sla_breached,
}


def project(state: TicketState | None, envelope: Envelope) -> tuple[TicketState | None, list[Sample]]:
    """The ticket's state after one event that fits it (`shared.lifecycle`), and the samples
    the event completes. Total: an event that does not fit changes nothing."""
    if envelope.type == TicketCreated.TYPE:
        return (TicketState(cycle_start=envelope.time) if state is None else state), []
    step = _STEPS.get(envelope.type)
    if state is None or step is None:
        return state, []
    return step(state, envelope.event, envelope.time)


def project_batch(
    states: Mapping[str, TicketState], events: Iterable[Envelope]
) -> tuple[dict[str, TicketState], list[Sample]]:
    """Fold `events` (stream order) over `states`; returns the states that changed and the samples."""
    changed: dict[str, TicketState] = {}
    samples: list[Sample] = []
    for envelope in events:
        ticket = envelope.ticket_id
        before = changed.get(ticket, states.get(ticket))
        after, completed = project(before, envelope)
        if after is not None and after != before:
            changed[ticket] = after
        samples += completed
    return changed, samples


def ignored(reason: str, count: int, at: datetime) -> list[Sample]:
    return [Sample(Kind.IGNORED, NO_TIER, at, reason, n=count)] if count else []


DayKey = tuple[date, str, str, str]  # (UTC day, kind, tier, detail)
Key = tuple[str, str, str]  # (kind, tier, detail)
Sums = tuple[int, int, int]  # (n, good, micros)


def roll_up(samples: Iterable[Sample]) -> tuple[dict[DayKey, Sums], dict[Key, Sums]]:
    """Samples summed per (UTC day, kind, tier, detail), and per (kind, tier, detail) over
    all days. Keys sorted, so concurrent transactions update the rows they share in one
    order and never deadlock."""
    daily: dict[DayKey, list[int]] = {}
    for kind, tier, at, detail, n, good, micros in samples:
        row = daily.get(day_key := (at.astimezone(UTC).date(), kind, tier, detail))
        if row is None:
            daily[day_key] = [n, good, micros or 0]
        else:
            row[0] += n
            row[1] += good
            row[2] += micros or 0
    total: dict[Key, list[int]] = {}
    for per_day, (n, good, micros) in daily.items():
        row = total.setdefault(per_day[1:], [0, 0, 0])
        row[0] += n
        row[1] += good
        row[2] += micros
    return (
        {key: (n, good, micros) for key, (n, good, micros) in sorted(daily.items())},
        {key: (n, good, micros) for key, (n, good, micros) in sorted(total.items())},
    )
