"""The oracle: 55 tickets with known lifecycles, published as real CloudEvents on a private
topic, through the metrics service on the real broker and database. Every exported KPI
series equals the value computed by hand below (written as literals, not by the code under
test); a replay by a second app with a new consumer group on the same schema changes
nothing, and both apps, replicas of each other, export the same series.

Three age groups decide the windows: R (two days ago: 7d, 30d, all), M (twelve days ago:
30d, all), O (45 days ago: all), and ticket X, created 40 days ago and resolved three days
ago (its arrival only in `all`, its resolution in every window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.metrics.conftest import (
    fresh_kpis,
    kpi_lines,
    kpi_series,
    promtool_check,
    running_metrics,
)
from tests.unit.metrics.stories import Story


# The paths, minutes after creation. Per tier: A arrivals, E ended visits, G first-contact
# resolutions, Res resolution times, FR first response times (minutes), TR resolved tickets
# (n, without escalation).
def p1(s):  # L1 resolves at first contact, rated 5. L1: A1 E1 G1 Res 61 FR 10, rating good. TR (1, 1)
    return s.routed(1, "L1").responded(11, "L1").resolved(61).rated(70, 5)


def p2(s):  # L1 resolves, no rating. L1: A1 E1 G1 Res 31 FR 5. TR (1, 1)
    return s.routed(1, "L1").responded(6, "L1").resolved(31)


def p3(s):  # escalated with a handoff, L2 resolves (the client names L1: the owner counts), rated 2.
    # L1: A1 E1 G0 esc->L2 handoff, request, FR 4. L2: A1 E1 G1 Res 121 FR 30, rating bad. TR (1, 0)
    return (
        s.routed(1, "L1")
        .responded(5, "L1")
        .requested(30, "L1", "L2")
        .escalated(31, "L1", "L2")
        .routed(31, "L2", "escalation")
        .responded(61, "L2")
        .resolved(121, "L1")
        .rated(130, 2)
    )


def p4(s):  # incomplete handoff bounced back to L1, which resolves (the request costs first contact).
    # L1: A1 E1 G0 request, bounce in (handoff_incomplete), Res 81 FR 2. TR (1, 1)
    return (
        s.routed(1, "L1")
        .responded(3, "L1")
        .requested(20, "L1", "L2")
        .bounced(21, "L2", "L1", "handoff_incomplete")
        .routed(21, "L1", "bounce")
        .resolved(81)
    )


def p5(s):  # L2 returns a quick fix, L1 closes the loop on a second visit.
    # L1: A2 E2 G1 esc->L2 handoff, request, bounce in (returned_with_fix), Res 50, FR 3 and 5.
    # L2: A1 E1 G0 FR 15. TR (1, 0)
    return (
        s.routed(1, "L1")
        .responded(4, "L1")
        .requested(10, "L1", "L2")
        .escalated(11, "L1", "L2")
        .routed(11, "L2", "escalation")
        .responded(26, "L2")
        .return_requested(40, "L2", "L1")
        .bounced(41, "L2", "L1", "returned_with_fix")
        .routed(41, "L1", "bounce")
        .responded(46, "L1")
        .resolved(50)
    )


def p6(s):  # jump straight to L3; L1's customer update is not L3's response. rated 4.
    # L3: A1 E1 G1 Res 241 FR 60, rating good. TR (1, 1)
    jumped = s.routed(1, "L3", "jump", speaker="L1")
    return jumped.responded(5, "L1").responded(61, "L3").resolved(241, "L3").rated(250, 4)


def p7(s):  # resolved, reopened, resolved again, rated 5.
    # L1: A2 E2 G1 (the first taken back), Res 41 and 61 (from the reopen), FR 10 and 10, one reopen,
    # rating good. TR (1, 1)
    return (
        s.routed(1, "L1")
        .responded(11, "L1")
        .resolved(41)
        .reopened(100)
        .routed(101, "L1", "reopen")
        .responded(111, "L1")
        .resolved(161)
        .rated(170, 5)
    )


def p8(s):  # first-response breach, the charter escalates.
    # L1: A1 E1 G0 esc->L2 sla_breach, breach first_response. L2: A1 E1 G1 Res 91 FR 10. TR (1, 0)
    return (
        s.routed(1, "L1")
        .breached(31, "L1", "first_response")
        .escalated(31, "L1", "L2", "sla_breach")
        .routed(31, "L2", "escalation")
        .responded(41, "L2")
        .resolved(91)
    )


def p9(s):  # p2, then a breach after the resolution: stale
    return p2(s).breached(40, "L1", "time_in_tier")


def p10(s):  # L1 -> L2 -> L3. L1: A1 E1 G0 esc->L2 handoff, request, FR 1.
    # L2: A1 E1 G0 esc->L3 handoff, request, FR 10. L3: A1 E1 G1 Res 301 FR 60. TR (1, 0)
    return (
        s.routed(1, "L1")
        .responded(2, "L1")
        .requested(10, "L1", "L2")
        .escalated(11, "L1", "L2")
        .routed(11, "L2", "escalation")
        .responded(21, "L2")
        .requested(60, "L2", "L3")
        .escalated(61, "L2", "L3")
        .routed(61, "L3", "escalation")
        .responded(121, "L3")
        .resolved(301, "L3")
    )


def p11(s):  # straight to L2, still open. L2: A1 FR 30, backlog 1
    return s.routed(1, "L2").responded(31, "L2")


def p12(s):  # assigned within L1 (no new visit), a time-in-tier breach, still open. L1: A1, backlog 1
    return s.routed(1, "L1").routed(5, "L1", "assignment").breached(60, "L1", "time_in_tier")


def p13(s):  # resolved before anyone owned it; its rating has no tier. TR (1, 1)
    return s.resolved(20).rated(25, 1)


def p14(s):  # resolved, reopened, then escalated: first contact and "without escalation" taken back.
    # L1: A2 E2 G0 Res 30, one reopen, esc->L2 handoff. L2: A1 E1 G1 Res 70. TR (1, 0)
    return (
        s.routed(1, "L1")
        .resolved(30)
        .reopened(60)
        .routed(61, "L1", "reopen")
        .escalated(70, "L1", "L2")
        .routed(70, "L2", "escalation")
        .resolved(130, "L2")
    )


def p15(s):  # p2 whose resolution is published twice (same id, another offset): a duplicate
    p2(s).events.append(s.events[-1])
    return s


def p1_rated_twice(s):  # p1 and a second rating: stale
    return p1(s).rated(80, 5)


def p2_routed_late(s):  # p2 and a routing after the resolution: stale
    return p2(s).routed(40, "L2", "rule")


GROUPS = {  # age in days -> paths (the same path may repeat)
    2: [p1] * 6
    + [p1_rated_twice]
    + [p2] * 4
    + [p2_routed_late, p9, p15]
    + [p3] * 3
    + [p4, p4, p5, p5, p6, p6, p7, p7, p8, p8, p10, p11, p11, p12, p13, p14],
    12: [p1] * 4 + [p3, p3, p4, p5, p6, p7, p8, p10],
    45: [p1] * 3 + [p2, p2, p3, p6, p7, p11],
}


def scripted(now: datetime, unique: str) -> tuple[list, int]:
    """Every event in publishing order, and how many tickets."""
    events, tickets = [], 0
    for age, paths in GROUPS.items():
        for i, path in enumerate(paths):
            events += path(Story(f"{unique}-{age}d-{i}", now - timedelta(days=age) + timedelta(minutes=i))).events
            tickets += 1
    x = Story(f"{unique}-x", now - timedelta(days=40)).routed(1, "L1").resolved(37 * 24 * 60)
    ghost = Story(f"{unique}-ghost", now).responded(1, "L1").events[1:]  # never created: stale
    return events + x.events + ghost, tickets + 1


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


def expected_series() -> dict[tuple[str, frozenset], float]:
    e: dict[tuple[str, frozenset], float] = {}
    # counters: all time (R + M + O + X)
    for tier, count in {"L1": 55, "L2": 18, "L3": 6}.items():
        e[("support_tier_arrivals_total", labels(tier=tier))] = count
    for tier, count in {"L1": 39, "L2": 10, "L3": 6}.items():
        e[("support_resolutions_total", labels(tier=tier))] = count
    for tier, count in {"L1": 5, "L2": 0, "L3": 0}.items():
        e[("support_reopens_total", labels(tier=tier))] = count
    e[("support_escalations_total", labels(tier="L1", to_tier="L2", reason="handoff"))] = 12
    e[("support_escalations_total", labels(tier="L1", to_tier="L2", reason="sla_breach"))] = 3
    e[("support_escalations_total", labels(tier="L2", to_tier="L3", reason="handoff"))] = 2
    for tier in ("L1", "L2", "L3"):
        for reason in ("handoff_incomplete", "returned_with_fix"):
            e[("support_bounces_total", labels(tier=tier, reason=reason))] = 3 if tier == "L1" else 0
    for tier in ("L0", "L1", "L2", "L3", "L4"):
        for kind in ("first_response", "time_in_tier"):
            e[("support_sla_breaches_total", labels(tier=tier, kind=kind))] = 0
    e[("support_sla_breaches_total", labels(tier="L1", kind="first_response"))] = 3
    e[("support_sla_breaches_total", labels(tier="L1", kind="time_in_tier"))] = 1
    e[("support_events_ignored_total", labels(reason="duplicate"))] = 1
    e[("support_events_ignored_total", labels(reason="stale"))] = 4
    e[("support_events_ignored_total", labels(reason="tier_claim_mismatch"))] = 0  # every claim fits
    for tier, count in {"L1": 1, "L2": 3, "L3": 0}.items():
        e[("support_backlog_tickets", labels(tier=tier))] = count
    # histogram: L1 30m x1, 31m x9, 41m x4, 50m x3, 61m x18, 81m x3, 37d x1; L2 70m, 91m x3, 121m x6;
    # L3 241m x4, 301m x2
    bounds = [
        "60.0",
        "300.0",
        "900.0",
        "1800.0",
        "3600.0",
        "7200.0",
        "14400.0",
        "28800.0",
        "86400.0",
        "172800.0",
        "345600.0",
        "604800.0",
        "1.2096e+06",
        "2.592e+06",
        "+Inf",
    ]
    buckets = {
        "L1": [0, 0, 0, 1, 17, 38, 38, 38, 38, 38, 38, 38, 38, 38, 39],
        "L2": [0, 0, 0, 0, 0, 4, 10, 10, 10, 10, 10, 10, 10, 10, 10],
        "L3": [0, 0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6],
    }
    sums = {"L1": 3314640.0, "L2": 64140.0, "L3": 93960.0}
    for tier, counts in buckets.items():
        for bound, count in zip(bounds, counts, strict=True):
            e[("support_resolution_duration_seconds_bucket", labels(tier=tier, le=bound))] = count
        e[("support_resolution_duration_seconds_count", labels(tier=tier))] = counts[-1]
        e[("support_resolution_duration_seconds_sum", labels(tier=tier))] = sums[tier]

    # gauges per window: 7d = R + X's resolution; 30d = R + M + X's resolution; all = everything
    ratios = {
        "support_first_contact_resolution_ratio": {
            "7d": {"L1": 19 / 33, "L2": 6 / 9, "L3": 3 / 3},
            "30d": {"L1": 25 / 46, "L2": 9 / 14, "L3": 5 / 5},
            "all": {"L1": 31 / 54, "L2": 10 / 15, "L3": 6 / 6},
        },
        "support_escalation_ratio": {
            "7d": {"L1": 9 / 33, "L2": 1 / 11, "L3": 0 / 3},
            "30d": {"L1": 14 / 46, "L2": 2 / 16, "L3": 0 / 5},
            "all": {"L1": 15 / 55, "L2": 2 / 18, "L3": 0 / 6},
        },
        "support_reopen_ratio": {
            "7d": {"L1": 3 / 24, "L2": 0 / 6, "L3": 0 / 3},
            "30d": {"L1": 4 / 32, "L2": 0 / 9, "L3": 0 / 5},
            "all": {"L1": 5 / 39, "L2": 0 / 10, "L3": 0 / 6},
        },
        "support_satisfaction_ratio": {
            "7d": {"L1": 9 / 9, "L2": 0 / 3, "L3": 2 / 2},
            "30d": {"L1": 14 / 14, "L2": 0 / 5, "L3": 3 / 3},
            "all": {"L1": 18 / 18, "L2": 0 / 6, "L3": 4 / 4},
        },
    }
    for name, windows in ratios.items():
        for window, tiers in windows.items():
            for tier, value in tiers.items():
                e[(name, labels(tier=tier, window=window))] = value
    bounce_back = {  # (handoff_incomplete: bounces in / requests from; returned_with_fix: / escalations from)
        "7d": {"L1": (2 / 8, 2 / 9), "L2": (0 / 1, 0 / 1)},
        "30d": {"L1": (3 / 13, 3 / 14), "L2": (0 / 2, 0 / 2)},
        "all": {"L1": (3 / 14, 3 / 15), "L2": (0 / 2, 0 / 2)},
    }  # L3 made neither requests nor escalations: absent
    for window, tiers in bounce_back.items():
        for tier, (incomplete, with_fix) in tiers.items():
            e[("support_bounce_back_ratio", labels(tier=tier, reason="handoff_incomplete", window=window))] = incomplete
            e[("support_bounce_back_ratio", labels(tier=tier, reason="returned_with_fix", window=window))] = with_fix
    resolution_time = {  # (median, p90) seconds, nearest rank
        "7d": {"L1": (3000, 4860), "L2": (5460, 7260), "L3": (14460, 18060)},
        "30d": {"L1": (3660, 4860), "L2": (7260, 7260), "L3": (14460, 18060)},
        "all": {"L1": (3660, 4860), "L2": (7260, 7260), "L3": (14460, 18060)},
    }
    for window, tiers in resolution_time.items():
        for tier, (median, p90) in tiers.items():
            e[("support_resolution_time_seconds", labels(tier=tier, window=window, quantile="0.5"))] = median
            e[("support_resolution_time_seconds", labels(tier=tier, window=window, quantile="0.9"))] = p90
    first_response = {  # (mean, median) seconds
        "7d": {"L1": (178 * 60 / 28, 300), "L2": (1260, 900), "L3": (3600, 3600)},
        "30d": {"L1": (257 * 60 / 40, 300), "L2": (1220, 900), "L3": (3600, 3600)},
        "all": {"L1": (321 * 60 / 48, 300), "L2": (365 * 60 / 17, 1800), "L3": (3600, 3600)},
    }
    for window, tiers in first_response.items():
        for tier, (mean, median) in tiers.items():
            e[("support_first_response_time_seconds", labels(tier=tier, window=window, statistic="mean"))] = mean
            e[("support_first_response_time_seconds", labels(tier=tier, window=window, statistic="median"))] = median
    for window, value in {"7d": 22 / 31, "30d": 29 / 43, "all": 36 / 51}.items():
        e[("support_resolved_without_escalation_ratio", labels(window=window))] = value
    return e


def assert_oracle(metrics_text: str) -> None:
    actual, expected = kpi_series(metrics_text), expected_series()
    assert set(actual) - set(expected) == set(), "series that should be absent"
    assert set(expected) - set(actual) == set(), "series missing"
    wrong = {
        key: (actual[key], value)
        for key, value in expected.items()
        if actual[key] != pytest.approx(value, rel=1e-12, abs=0)
    }  # ratios and means: float division
    assert wrong == {}


async def test_every_kpi_equals_its_hand_computed_value_and_a_replay_changes_nothing(private, producer, unique):
    now = datetime.now(UTC)
    events, tickets = scripted(now, unique)
    assert tickets == 55
    async with running_metrics(private.env("g1")) as (first, first_client):
        await private.publish(producer, events)
        await private.consumed("g1")
        document = await fresh_kpis(first, first_client)
        page = (await first_client.get("/metrics")).text
        assert_oracle(page)
        promtool_check(page)
        assert document["tiers"] == ["L1", "L2", "L3"] and document["backlog"] == {"L1": 1, "L2": 3, "L3": 0}
        seven = document["windows"]["7d"]
        assert (
            seven["tiers"]["L1"]["arrivals"],
            seven["tiers"]["L1"]["visits_ended"],
            seven["tiers"]["L1"]["first_contact_resolutions"],
        ) == (33, 33, 19)
        assert (seven["resolved_tickets"], seven["resolved_without_escalation"]) == (31, 22)
        assert seven["tiers"]["L3"]["bounce_back_ratio"] == {}
        assert document["windows"]["all"]["ignored"] == {"duplicate": 1, "stale": 4}

        # A replica that replays the topic from the beginning (a new group, the same schema):
        # every event is already claimed, nothing changes, and both export the same series.
        async with running_metrics(private.env("g2")) as (second, second_client):
            await private.consumed("g2")
            await fresh_kpis(second, second_client)
            await fresh_kpis(first, first_client)
            replica = (await second_client.get("/metrics")).text
            again = (await first_client.get("/metrics")).text
        assert_oracle(again)
        assert kpi_lines(replica) == kpi_lines(again) == kpi_lines(page)
