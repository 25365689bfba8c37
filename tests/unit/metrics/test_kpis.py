"""KPI arithmetic (services/metrics/core/kpis.py): absent ratios, the tiers shown, the
nearest rank, the two-level quantile lookup and the histogram."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.metrics.core.kpis import (
    QUANTILES,
    Total,
    by_kind_and_tier,
    histogram,
    rank,
    rank_lookups,
    snapshot,
    tier_kpis,
    tiers_shown,
)
from services.metrics.core.visits import Kind, duration_bucket

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def test_with_no_samples_every_ratio_and_time_is_absent_and_counters_are_zero():
    kpis = snapshot(NOW, {"7d": {}, "30d": {}, "all": {}}, {"7d": {}, "30d": {}, "all": {}}, {})
    assert kpis.tiers == ["L1", "L2", "L3"] and kpis.backlog == {"L1": 0, "L2": 0, "L3": 0}
    for window in kpis.windows.values():
        assert window.resolved_without_escalation_ratio is None
        for tier in window.tiers.values():
            assert (
                tier.first_contact_resolution_ratio,
                tier.escalation_ratio,
                tier.reopen_ratio,
                tier.satisfaction_ratio,
            ) == (None, None, None, None)
            assert tier.bounce_back_ratio == tier.resolution_time_seconds == tier.first_response_time_seconds == {}
            assert (tier.arrivals, tier.resolutions, tier.bounces) == (
                0,
                0,
                {"handoff_incomplete": 0, "returned_with_fix": 0},
            )


def test_a_ratio_appears_with_its_denominator_only():
    totals = {
        ("arrival", "L2", ""): Total(4),
        ("escalation_request", "L2", ""): Total(2),
        ("bounce", "L2", "handoff_incomplete"): Total(1),
    }
    kpis = tier_kpis(by_kind_and_tier(totals), {}, "L2")
    assert kpis.escalation_ratio == 0.0  # four arrivals, no escalation: a real zero
    assert kpis.bounce_back_ratio == {"handoff_incomplete": 0.5}  # no escalation: no returned_with_fix ratio
    assert kpis.first_contact_resolution_ratio is None  # no visit ended yet


def test_first_contact_and_satisfaction_use_good_over_n_and_mean_uses_exact_micros():
    totals = {
        ("visit_end", "L1", ""): Total(4, 3),
        ("rating", "L1", ""): Total(5, 4),
        ("first_response", "L1", "12"): Total(2, 0, 3_000_001),
        ("first_response", "L1", "40"): Total(1, 0, 5),
    }
    kpis = tier_kpis(by_kind_and_tier(totals), {("first_response", "L1", 0.5): 7}, "L1")
    assert (kpis.first_contact_resolution_ratio, kpis.satisfaction_ratio) == (0.75, 0.8)
    assert kpis.first_response_time_seconds == {"mean": 3_000_006 / 3 / 1e6, "median": 7e-6}


def test_every_tier_seen_is_shown_in_the_catalogue_order():
    assert tiers_shown({("arrival", "L4", ""): Total(1), ("ticket_resolved", "", ""): Total(1)}, {"L0": 2}) == [
        "L0",
        "L1",
        "L2",
        "L3",
        "L4",
    ]


def test_nearest_rank_is_percentile_disc_in_float_arithmetic():
    assert [rank(0.5, n) for n in (1, 2, 3, 23, 24)] == [1, 1, 2, 12, 12]
    assert [rank(0.9, n) for n in (1, 10, 24, 39)] == [1, 9, 22, 36]
    # no float surprise for our quantiles: ceil(q·n) in doubles is the exact ceil(9n/10), ceil(n/2)
    assert all(rank(0.9, n) == -(-9 * n // 10) and rank(0.5, n) == -(-n // 2) for n in range(1, 100_000))


def test_a_quantile_is_located_by_the_counts_per_bucket():
    totals = {
        ("resolution", "L1", "9"): Total(1),
        ("resolution", "L1", "3"): Total(2),
        ("resolution", "L1", "7"): Total(5),
        ("arrival", "L1", ""): Total(8),
    }
    assert [(x.quantile, x.bucket, x.residual) for x in rank_lookups(totals)] == [(0.5, 7, 2), (0.9, 9, 1)]


@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=300))
def test_the_two_level_lookup_finds_the_nearest_rank_value(durations):
    totals: dict = {}
    for micros in durations:
        key = ("resolution", "L2", str(duration_bucket(micros)))
        totals[key] = Total(totals.get(key, Total()).n + 1)
    ordered = sorted(durations)
    for lookup in rank_lookups(totals):
        in_bucket = sorted(m for m in durations if duration_bucket(m) == lookup.bucket)
        assert in_bucket[lookup.residual - 1] == ordered[rank(lookup.quantile, len(durations)) - 1]
    assert [x.quantile for x in rank_lookups(totals)] == list(QUANTILES[Kind.RESOLUTION])


def test_the_histogram_is_cumulative_at_every_bound():
    per_bucket = {
        duration_bucket(30_000_000): 2,
        duration_bucket(60_000_000): 1,
        duration_bucket(61_000_000): 4,
        duration_bucket(10**14): 1,
    }
    assert histogram(per_bucket) == {
        "60": 3,
        "300": 7,
        "900": 7,
        "1800": 7,
        "3600": 7,
        "7200": 7,
        "14400": 7,
        "28800": 7,
        "86400": 7,
        "172800": 7,
        "345600": 7,
        "604800": 7,
        "1209600": 7,
        "2592000": 7,
        "+Inf": 8,
    }
