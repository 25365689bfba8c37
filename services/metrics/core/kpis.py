"""The tier KPIs of docs/kpis.md, from sample sums: pure arithmetic over what the store read.

Invariants (tests: tests/unit/metrics/test_kpis.py):
1. A ratio with no denominator yet is absent (None), never 0 or NaN; so are quantiles and
   means of no samples.
2. Every tier seen in any sample is reported, and L1-L3 always; every window reports the
   same tiers.
3. Numbers are what the sums say, nothing estimated: counts are integers, durations are
   exact microseconds until they are shown as seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.metrics.core.visits import DURATION_BOUNDS_US, NO_TIER, RESOLUTION_BUCKETS_S, Key, Kind
from shared.events import BounceReason, Tier

WINDOWS: dict[str, timedelta | None] = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
# Nearest-rank quantiles of each duration: time to resolution p50 and p90, first response median.
QUANTILES: dict[str, tuple[float, ...]] = {Kind.RESOLUTION: (0.5, 0.9), Kind.FIRST_RESPONSE: (0.5,)}
ALWAYS_SHOWN = (Tier.L1.value, Tier.L2.value, Tier.L3.value)
# Seconds are exact microseconds divided once, int by int: Python rounds that division
# correctly, so any other exact computation of the same KPI agrees to the last digit.
MICROS = 1_000_000
TIER_ORDER = tuple(tier.value for tier in Tier)


@dataclass(frozen=True, slots=True)
class Total:
    n: int = 0
    good: int = 0
    micros: int = 0


Totals = Mapping[Key, Total]
Ranked = Mapping[tuple[str, str, float], int]  # (kind, tier, quantile) -> micros


def rank(quantile: float, count: int) -> int:
    """The 1-based nearest rank PostgreSQL's `percentile_disc` picks: ceil(q·n) in float
    arithmetic, at least 1."""
    return max(math.ceil(quantile * count), 1)


@dataclass(frozen=True, slots=True)
class RankLookup:
    """Where the quantile of a tier's durations is: the `residual`-th smallest (1-based) of
    the samples in duration bucket `bucket`."""

    kind: str
    tier: str
    quantile: float
    bucket: int
    residual: int


def rank_lookups(totals: Totals) -> list[RankLookup]:
    """For every tier's durations in `totals` (counted per bucket), the bucket and the rank
    inside it of each quantile: the buckets below it hold the first ranks."""
    counts: dict[tuple[str, str], dict[int, int]] = {}
    for (kind, tier, detail), total in totals.items():
        if kind in QUANTILES and total.n:
            counts.setdefault((kind, tier), {})[int(detail)] = total.n
    lookups = []
    for (kind, tier), per_bucket in sorted(counts.items()):
        for quantile in QUANTILES[kind]:
            wanted = rank(quantile, sum(per_bucket.values()))
            for bucket in sorted(per_bucket):
                if wanted <= per_bucket[bucket]:
                    lookups.append(RankLookup(kind, tier, quantile, bucket, wanted))
                    break
                wanted -= per_bucket[bucket]
    return lookups


@dataclass(frozen=True, slots=True)
class TierKpis:
    arrivals: int
    visits_ended: int
    first_contact_resolutions: int
    first_contact_resolution_ratio: float | None
    escalations: int  # ticket.escalated from this tier
    escalation_requests: int  # ticket.escalation_requested from this tier
    escalation_ratio: float | None
    escalations_to: dict[str, dict[str, int]]  # to_tier -> reason -> count
    bounces: dict[str, int]  # reason -> bounces into this tier
    bounce_back_ratio: dict[str, float]  # reason -> ratio; a reason without denominator is absent
    resolutions: int
    resolution_time_seconds: dict[str, float]  # "0.5", "0.9" -> seconds (nearest rank)
    resolution_histogram: dict[str, int]  # bound in seconds ("60" ... "+Inf") -> resolutions at most that long
    resolution_seconds_sum: float
    reopens: int
    reopen_ratio: float | None
    first_responses: int
    first_response_time_seconds: dict[str, float]  # "mean", "median" -> seconds
    ratings: int
    satisfied_ratings: int
    satisfaction_ratio: float | None
    sla_breaches: dict[str, int]  # kind -> count


@dataclass(frozen=True, slots=True)
class WindowKpis:
    tiers: dict[str, TierKpis]
    resolved_tickets: int  # tickets whose first resolution falls in the window
    resolved_without_escalation: int
    resolved_without_escalation_ratio: float | None
    ignored: dict[str, int] = field(default_factory=dict)  # reason -> events


@dataclass(frozen=True, slots=True)
class Snapshot:
    computed_at: datetime
    windows: dict[str, WindowKpis]  # "7d", "30d", "all"
    backlog: dict[str, int]  # tier -> tickets whose current visit is there

    @property
    def tiers(self) -> list[str]:
        return list(self.windows["all"].tiers)


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def tiers_shown(totals: Totals, backlog: Mapping[str, int]) -> list[str]:
    seen = {tier for _, tier, _ in totals} | set(backlog) | set(ALWAYS_SHOWN)
    return [tier for tier in TIER_ORDER if tier in seen]


def by_kind_and_tier(totals: Totals) -> dict[tuple[str, str], dict[str, Total]]:
    grouped: dict[tuple[str, str], dict[str, Total]] = {}
    for (kind, tier, detail), total in totals.items():
        grouped.setdefault((kind, tier), {})[detail] = total
    return grouped


def tier_kpis(grouped: Mapping[tuple[str, str], Mapping[str, Total]], ranked: Ranked, tier: str) -> TierKpis:
    def of(kind: Kind) -> Mapping[str, Total]:
        return grouped.get((kind, tier), {})

    def n(kind: Kind) -> int:
        return sum(total.n for total in of(kind).values())

    arrivals, escalations, requests = n(Kind.ARRIVAL), n(Kind.ESCALATION), n(Kind.ESCALATION_REQUEST)
    ended = of(Kind.VISIT_END).get("", Total())
    escalations_to: dict[str, dict[str, int]] = {}
    for detail, total in sorted(of(Kind.ESCALATION).items()):
        to_tier, reason = detail.split("/")
        escalations_to.setdefault(to_tier, {})[reason] = total.n
    bounces = {reason.value: of(Kind.BOUNCE).get(reason.value, Total()).n for reason in BounceReason}
    denominators = {BounceReason.RETURNED_WITH_FIX.value: escalations, BounceReason.HANDOFF_INCOMPLETE.value: requests}
    resolved = of(Kind.RESOLUTION)
    resolutions = sum(total.n for total in resolved.values())
    responded = of(Kind.FIRST_RESPONSE).values()
    responses = Total(sum(total.n for total in responded), 0, sum(total.micros for total in responded))
    ratings = of(Kind.RATING).get("", Total())
    resolution_time = (
        {str(q): ranked[(Kind.RESOLUTION, tier, q)] / MICROS for q in QUANTILES[Kind.RESOLUTION]} if resolutions else {}
    )
    response_time = {}
    if responses.n:
        response_time = {
            "mean": responses.micros / (responses.n * MICROS),
            "median": ranked[(Kind.FIRST_RESPONSE, tier, 0.5)] / MICROS,
        }
    return TierKpis(
        arrivals=arrivals,
        visits_ended=ended.n,
        first_contact_resolutions=ended.good,
        first_contact_resolution_ratio=ratio(ended.good, ended.n),
        escalations=escalations,
        escalation_requests=requests,
        escalation_ratio=ratio(escalations, arrivals),
        escalations_to=escalations_to,
        bounces=bounces,
        bounce_back_ratio={
            reason: count / denominators[reason] for reason, count in bounces.items() if denominators[reason]
        },
        resolutions=resolutions,
        resolution_time_seconds=resolution_time,
        resolution_histogram=histogram({int(bucket): total.n for bucket, total in resolved.items()}),
        resolution_seconds_sum=sum(total.micros for total in resolved.values()) / MICROS,
        reopens=n(Kind.REOPEN),
        reopen_ratio=ratio(n(Kind.REOPEN), resolutions),
        first_responses=responses.n,
        first_response_time_seconds=response_time,
        ratings=ratings.n,
        satisfied_ratings=ratings.good,
        satisfaction_ratio=ratio(ratings.good, ratings.n),
        sla_breaches={detail: total.n for detail, total in sorted(of(Kind.SLA_BREACH).items())},
    )


def histogram(per_bucket: Mapping[int, int]) -> dict[str, int]:
    """Cumulative counts at each histogram bound, from counts per fine duration bucket."""
    cumulative = {}
    for bound in RESOLUTION_BUCKETS_S:
        last = DURATION_BOUNDS_US.index(bound * 1_000_000)
        cumulative[str(bound)] = sum(count for bucket, count in per_bucket.items() if bucket <= last)
    return {**cumulative, "+Inf": sum(per_bucket.values())}


def window_kpis(totals: Totals, ranked: Ranked, tiers: list[str]) -> WindowKpis:
    resolved = totals.get((Kind.TICKET_RESOLVED, NO_TIER, ""), Total())
    grouped = by_kind_and_tier(totals)
    return WindowKpis(
        tiers={tier: tier_kpis(grouped, ranked, tier) for tier in tiers},
        resolved_tickets=resolved.n,
        resolved_without_escalation=resolved.good,
        resolved_without_escalation_ratio=ratio(resolved.good, resolved.n),
        ignored={detail: total.n for (kind, _, detail), total in sorted(totals.items()) if kind == Kind.IGNORED},
    )


def snapshot(
    computed_at: datetime, totals: Mapping[str, Totals], ranked: Mapping[str, Ranked], backlog: Mapping[str, int]
) -> Snapshot:
    """Every window's KPIs; `totals` and `ranked` are keyed by window name."""
    tiers = tiers_shown(totals["all"], backlog)
    return Snapshot(
        computed_at=computed_at,
        windows={name: window_kpis(totals[name], ranked[name], tiers) for name in WINDOWS},
        backlog={tier: backlog.get(tier, 0) for tier in tiers},
    )
