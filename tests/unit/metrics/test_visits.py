"""The projection core (services/metrics/core/visits.py): which samples each path of a
ticket completes, and the invariants over any interleaving of events."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.core.visits import (
    DURATION_BOUNDS_US,
    RESOLUTION_BUCKETS_S,
    Kind,
    Sample,
    TicketState,
    duration_bucket,
    ignored,
    project,
    project_batch,
    roll_up,
)
from shared.lifecycle import Stale, advance
from tests.unit.metrics.stories import T0, Story


def fold(story: Story) -> tuple[TicketState, list[Sample]]:
    states, samples = project_batch({}, story.events)
    return states[story.ticket_id], samples


def brief(samples: list[Sample]) -> list[tuple]:
    """(kind, tier, detail, minutes after T0, n, good, duration in minutes); a duration's
    detail, its bucket, is checked against the duration and left out."""
    for s in samples:
        if s.micros is not None:
            assert s.detail == str(duration_bucket(s.micros))
    return [
        (
            s.kind.value,
            s.tier,
            "" if s.micros is not None else s.detail,
            (s.at - T0) / timedelta(minutes=1),
            s.n,
            s.good,
            None if s.micros is None else s.micros / 60e6,
        )
        for s in samples
    ]


def test_an_l1_resolution_at_first_contact():
    state, samples = fold(Story("t").routed(1, "L1").responded(11, "L1").resolved(61, "L1").rated(70, 5))
    assert brief(samples) == [
        ("arrival", "L1", "", 1, 1, 0, None),
        ("first_response", "L1", "", 11, 1, 0, 10),
        ("visit_end", "L1", "", 61, 1, 1, None),
        ("resolution", "L1", "", 61, 1, 0, 61),
        ("ticket_resolved", "", "", 61, 1, 1, None),
        ("rating", "L1", "", 70, 1, 1, None),
    ]
    assert state.visit is None and state.resolution.tier == "L1" and state.resolution.first_contact


def test_an_escalation_ends_one_visit_and_starts_the_next():
    _, samples = fold(
        Story("t")
        .routed(1, "L1")
        .responded(5, "L1")
        .requested(30, "L1", "L2")
        .escalated(31, "L1", "L2")
        .routed(31, "L2", "escalation")
        .responded(61, "L2")
        .resolved(121, "L1")
        .rated(130, 2)
    )
    assert brief(samples) == [
        ("arrival", "L1", "", 1, 1, 0, None),
        ("first_response", "L1", "", 5, 1, 0, 4),
        ("escalation_request", "L1", "", 30, 1, 0, None),
        ("escalation", "L1", "L2/handoff", 31, 1, 0, None),
        ("visit_end", "L1", "", 31, 1, 0, None),
        ("arrival", "L2", "", 31, 1, 0, None),
        ("first_response", "L2", "", 61, 1, 0, 30),
        ("visit_end", "L2", "", 121, 1, 1, None),  # the client said L1; the owner, L2, resolved it
        ("resolution", "L2", "", 121, 1, 0, 121),
        ("ticket_resolved", "", "", 121, 1, 0, None),  # escalated: not resolved without escalation
        ("rating", "L2", "", 130, 1, 0, None),
    ]


def test_a_bounce_back_to_the_owner_starts_no_visit_and_the_request_costs_first_contact():
    _, samples = fold(
        Story("t")
        .routed(1, "L1")
        .requested(10, "L1", "L2")
        .bounced(11, "L2", "L1", "handoff_incomplete")
        .routed(11, "L1", "bounce")
        .routed(12, "L1", "assignment")
        .resolved(40)
    )
    assert [s for s in brief(samples) if s[0] in ("arrival", "visit_end", "bounce")] == [
        ("arrival", "L1", "", 1, 1, 0, None),
        ("bounce", "L1", "handoff_incomplete", 11, 1, 0, None),
        ("visit_end", "L1", "", 40, 1, 0, None),
    ]


def test_a_return_with_fix_is_a_new_visit_at_l1():
    state, samples = fold(
        Story("t")
        .routed(1, "L1")
        .escalated(5, "L1", "L2")
        .routed(5, "L2", "escalation")
        .return_requested(20, "L2", "L1")
        .bounced(21, "L2", "L1", "returned_with_fix")
        .routed(21, "L1", "bounce")
        .responded(25, "L1")
        .resolved(30)
    )
    assert [s[:4] for s in brief(samples) if s[0] in ("arrival", "visit_end", "bounce", "first_response")] == [
        ("arrival", "L1", "", 1),
        ("visit_end", "L1", "", 5),
        ("arrival", "L2", "", 5),
        ("bounce", "L1", "returned_with_fix", 21),
        ("visit_end", "L2", "", 21),
        ("arrival", "L1", "", 21),
        ("first_response", "L1", "", 25),
        ("visit_end", "L1", "", 30),
    ]
    assert state.resolution.tier == "L1" and state.resolution.first_contact


def test_a_jump_to_l3_counts_only_l3_responses_for_l3():
    _, samples = fold(Story("t").routed(1, "L3", "jump").responded(3, "L1").responded(90, "L3").resolved(200))
    assert [s for s in brief(samples) if s[0] == "first_response"] == [("first_response", "L3", "", 90, 1, 0, 89)]


def test_a_reopen_takes_back_first_contact_and_starts_a_new_cycle():
    story = (
        Story("t")
        .routed(1, "L1")
        .resolved(60)
        .rated(61, 3)
        .reopened(600)
        .routed(601, "L1", "reopen")
        .responded(610, "L1")
        .resolved(660)
        .rated(700, 4)
    )
    state, samples = fold(story)
    assert [
        s for s in brief(samples) if s[0] in ("visit_end", "resolution", "reopen", "ticket_resolved", "rating")
    ] == [
        ("visit_end", "L1", "", 60, 1, 1, None),
        ("resolution", "L1", "", 60, 1, 0, 60),
        ("ticket_resolved", "", "", 60, 1, 1, None),
        ("rating", "L1", "", 61, 1, 0, None),
        ("reopen", "L1", "", 600, 1, 0, None),
        ("visit_end", "L1", "", 60, 0, -1, None),  # taken back, at the visit's end
        ("visit_end", "L1", "", 660, 1, 1, None),
        ("resolution", "L1", "", 660, 1, 0, 60),  # from the reopen, not from the creation
        ("rating", "L1", "", 700, 1, 1, None),
    ]
    assert state.cycle_start == T0 + timedelta(minutes=600)


def test_an_escalation_after_a_reopen_takes_back_resolved_without_escalation():
    _, samples = fold(
        Story("t")
        .routed(1, "L1")
        .resolved(60)
        .reopened(100)
        .routed(101, "L1", "reopen")
        .escalated(110, "L1", "L2")
        .routed(110, "L2", "escalation")
        .resolved(200)
    )
    assert [s for s in brief(samples) if s[0] == "ticket_resolved"] == [
        ("ticket_resolved", "", "", 60, 1, 1, None),
        ("ticket_resolved", "", "", 60, 0, -1, None),
    ]


def test_a_ticket_nobody_owns_resolves_for_no_tier():
    state, samples = fold(Story("t").responded(5, "L1").resolved(30).rated(31, 5).reopened(40))
    assert brief(samples) == [("ticket_resolved", "", "", 30, 1, 1, None)]
    assert state.resolution is None and state.visit is None


def test_breaches_and_ignored_events_are_counted_with_their_labels():
    _, samples = fold(Story("t").routed(1, "L1").breached(30, "L1", "time_in_tier"))
    assert brief(samples)[-1] == ("sla_breach", "L1", "time_in_tier", 30, 1, 0, None)
    assert ignored("stale", 0, T0) == []
    assert brief(ignored("duplicate", 3, T0)) == [("ignored", "", "duplicate", 0, 3, 0, None)]


def test_duration_buckets_are_inclusive_upper_bounds_and_hold_every_histogram_bound():
    assert duration_bucket(0) == duration_bucket(1_000_000) == 0
    assert duration_bucket(1_000_001) == 1
    for seconds in RESOLUTION_BUCKETS_S:
        bucket = duration_bucket(seconds * 1_000_000)
        assert DURATION_BOUNDS_US[bucket] == seconds * 1_000_000
        assert duration_bucket(seconds * 1_000_000 + 1) == bucket + 1
    assert duration_bucket(10**17) == len(DURATION_BOUNDS_US)  # beyond ten years: the last, unbounded one
    widths = [b / a for a, b in pairwise(DURATION_BOUNDS_US)]
    assert max(widths) <= 1.051  # a bucket is at most 5% wide: a quantile's walk stays short


def test_a_clock_running_behind_gives_zero_not_negative_durations():
    _, samples = fold(Story("t").routed(10, "L1").responded(5, "L1").resolved(-3))
    assert [s.micros for s in samples if s.micros is not None] == [0, 0]


def test_daily_sums_and_totals_are_sorted_and_add_up():
    samples = [
        Sample(Kind.ARRIVAL, "L2", T0),
        Sample(Kind.ARRIVAL, "L1", T0 + timedelta(days=1)),
        Sample(Kind.ARRIVAL, "L2", T0, n=1),
        Sample(Kind.VISIT_END, "L1", T0, good=1),
        Sample(Kind.VISIT_END, "L1", T0 + timedelta(hours=3), n=0, good=-1),
        Sample(Kind.RESOLUTION, "L1", T0, "7", micros=5),
        Sample(Kind.RESOLUTION, "L1", T0, "7", micros=7),
        Sample(Kind.ARRIVAL, "L1", T0),
    ]
    day = T0.date()
    daily, total = roll_up(samples)
    assert list(daily.items()) == [
        ((day, "arrival", "L1", ""), (1, 0, 0)),
        ((day, "arrival", "L2", ""), (2, 0, 0)),
        ((day, "resolution", "L1", "7"), (2, 0, 12)),
        ((day, "visit_end", "L1", ""), (1, 0, 0)),
        ((day + timedelta(days=1), "arrival", "L1", ""), (1, 0, 0)),
    ]
    assert list(total.items()) == [
        (("arrival", "L1", ""), (2, 0, 0)),
        (("arrival", "L2", ""), (2, 0, 0)),
        (("resolution", "L1", "7"), (2, 0, 12)),
        (("visit_end", "L1", ""), (1, 0, 0)),
    ]


# --- any interleaving -------------------------------------------------------------------

TIERS = st.sampled_from(["L1", "L2", "L3"])
STEPS = st.one_of(
    st.tuples(st.just("routed"), TIERS, st.sampled_from(["rule", "escalation", "bounce", "reopen", "assignment"])),
    st.tuples(st.just("responded"), TIERS),
    st.tuples(st.just("requested"), TIERS, TIERS),
    st.tuples(st.just("escalated"), TIERS, TIERS),
    st.tuples(st.just("bounced"), TIERS, TIERS, st.sampled_from(["handoff_incomplete", "returned_with_fix"])),
    st.tuples(st.just("resolved"), TIERS),
    st.tuples(st.just("reopened")),
    st.tuples(st.just("rated"), st.integers(1, 5)),
    st.tuples(st.just("breached"), TIERS),
)


@st.composite
def streams(draw, *, fitting: bool):
    """Events of up to three tickets, interleaved; times wander (clocks are not monotonic).
    `fitting`: only what the kit's staleness rule lets through."""
    stories = [Story(f"t{i}", T0 + timedelta(minutes=i)) for i in range(draw(st.integers(1, 3)))]
    order = [(story, story.events[0]) for story in stories]
    for _ in range(draw(st.integers(0, 40))):
        story = draw(st.sampled_from(stories))
        name, *args = draw(STEPS)
        getattr(story, name)(draw(st.integers(-30, 2000)), *args)
        order.append((story, story.events[-1]))
    events = [envelope for _, envelope in order]
    if not fitting:
        return events
    lifecycles, kept = {}, []
    for envelope in events:
        verdict = advance(lifecycles.get(envelope.ticket_id), envelope.type)
        if not isinstance(verdict, Stale):
            lifecycles[envelope.ticket_id] = verdict
            kept.append(envelope)
    return kept


@settings(max_examples=300)
@given(streams(fitting=True) | streams(fitting=False))
def test_at_most_one_open_visit_per_ticket(events):
    states: dict[str, TicketState] = {}
    open_visits: Counter[str] = Counter()
    for envelope in events:
        after, samples = project(states.get(envelope.ticket_id), envelope)
        if after is not None:
            states[envelope.ticket_id] = after
        for sample in samples:
            if sample.kind == Kind.ARRIVAL:
                open_visits[envelope.ticket_id] += 1
            elif sample.kind == Kind.VISIT_END:
                open_visits[envelope.ticket_id] -= sample.n
        state = states.get(envelope.ticket_id)
        assert open_visits[envelope.ticket_id] == (state is not None and state.visit is not None)


@settings(max_examples=200)
@given(streams(fitting=True) | streams(fitting=False), st.lists(st.integers(0, 60), max_size=6))
def test_any_split_into_batches_and_any_replay_give_the_same_result(events, cuts):
    whole = project_batch({}, events)
    assert project_batch({}, events) == whole
    stored: dict[str, TicketState] = {}
    samples: list[Sample] = []
    bounds = sorted({0, len(events), *(min(cut, len(events)) for cut in cuts)})
    for start, end in pairwise(bounds):
        changed, completed = project_batch(dict(stored), events[start:end])
        stored.update(changed)
        samples += completed
    assert (stored, samples) == whole


@settings(max_examples=300)
@given(streams(fitting=True) | streams(fitting=False))
def test_corrections_never_overdraw_and_durations_are_never_negative(events):
    _, samples = project_batch({}, events)
    daily, _ = roll_up(samples)
    for (_, kind, _, _), (n, good, _) in daily.items():
        if kind in (Kind.VISIT_END, Kind.TICKET_RESOLVED, Kind.RATING):
            assert 0 <= good <= n
    per_moment: Counter[tuple] = Counter()
    for sample in samples:
        if sample.kind in (Kind.VISIT_END, Kind.TICKET_RESOLVED):
            per_moment[(sample.kind, sample.tier, sample.at, "good")] += sample.good
            assert per_moment[(sample.kind, sample.tier, sample.at, "good")] >= 0
    assert all(sample.micros >= 0 for sample in samples if sample.micros is not None)
    assert sum(s.n for s in samples if s.kind == Kind.TICKET_RESOLVED) <= len({e.ticket_id for e in events})
