"""KPIs into Prometheus: a background refresher computes the snapshot from PostgreSQL, and a
custom collector turns the latest snapshot into metric families at scrape time.

Invariants (tests: tests/unit/metrics/test_exporter.py, tests/integration/metrics/):
1. A scrape never touches the database: it reads the cached snapshot, computed at start
   (before the consumers run) and then every `refresh_interval_s`.
2. Exactly the names and labels of docs/kpis.md (tests/unit/deploy's contract); no per-ticket
   label. A ratio or a time with no sample is absent; counters are exported at 0 for every
   tier shown, and SLA breaches for every (tier, kind) of the catalogue, so `increase()`
   sees the first one.
3. The histogram is exact and the same on every replica: bucket counts and sum come from
   the totals in PostgreSQL, not from a process-local histogram.
4. A failed refresh keeps the previous snapshot, is reported (readiness, `support_stalled`,
   one log line per backoff step); `support_kpi_age_seconds` shows how old the served values are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

import asyncpg
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from services.metrics.adapters.store import ProjectionStore
from services.metrics.core.kpis import TIER_ORDER, WINDOWS, Snapshot
from shared.events import SlaKind

IGNORED_REASONS = ("duplicate", "stale", "tier_claim_mismatch")


class Refresher:
    """Keeps `snapshot`, the KPIs as of the last refresh (at start, then every
    METRICS_REFRESH_INTERVAL_S through `runtime.every`, which reports a failing refresh in
    readiness; the previous snapshot is served meanwhile, `support_kpi_age_seconds` grows)."""

    def __init__(
        self,
        store: ProjectionStore,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.snapshot: Snapshot | None = None
        self.duration_s = 0.0
        self._pool, self._clock = pool, clock

    async def refresh(self) -> Snapshot:
        started = time.perf_counter()
        self.snapshot = await self.store.read(self._pool(), self._clock())
        self.duration_s = time.perf_counter() - started
        return self.snapshot


class KpiCollector(Collector):
    """The snapshot as metric families, at scrape time (`families`), and how old it is."""

    def __init__(self, refresher: Refresher, clock: Callable[[], datetime]) -> None:
        self.refresher, self.clock = refresher, clock

    def describe(self) -> list[Metric]:
        return []  # names depend on the data; registering must not wait for a snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self.refresher.snapshot
        if snapshot is None:
            return
        yield from families(snapshot)
        age = GaugeMetricFamily("support_kpi_age_seconds", "Seconds since the served KPIs were computed.")
        age.add_metric([], (self.clock() - snapshot.computed_at).total_seconds())
        duration = GaugeMetricFamily("support_kpi_refresh_duration_seconds", "How long the last KPI refresh took.")
        duration.add_metric([], self.refresher.duration_s)
        yield from (age, duration)


def families(snapshot: Snapshot) -> list[Metric]:
    """The KPI metric families of one snapshot. Pure."""
    tiers, all_time = snapshot.tiers, snapshot.windows["all"]
    arrivals = CounterMetricFamily(
        "support_tier_arrivals",
        "Visits started at a tier: a routing to a tier that did not own the ticket.",
        labels=["tier"],
    )
    escalations = CounterMetricFamily(
        "support_escalations", "ticket.escalated, by the tier it left.", labels=["tier", "to_tier", "reason"]
    )
    bounces = CounterMetricFamily(
        "support_bounces", "ticket.bounced, by the tier it was sent back into.", labels=["tier", "reason"]
    )
    resolutions = CounterMetricFamily("support_resolutions", "Resolutions by the owning tier.", labels=["tier"])
    reopens = CounterMetricFamily(
        "support_reopens", "Reopens, by the tier of the resolution reopened.", labels=["tier"]
    )
    breaches = CounterMetricFamily(
        "support_sla_breaches", "ticket.sla_breached, by tier and kind.", labels=["tier", "kind"]
    )
    ignored = CounterMetricFamily(
        "support_events_ignored",
        "Events without effect on the KPIs: duplicates (an id seen before at another position) and stale events.",
        labels=["reason"],
    )
    histogram = HistogramMetricFamily(
        "support_resolution_duration_seconds",
        "Time to resolution by the owning tier (from creation or the latest reopen), all time.",
        labels=["tier"],
    )
    backlog = GaugeMetricFamily(
        "support_backlog_tickets", "Tickets whose current visit is at the tier.", labels=["tier"]
    )
    for tier in tiers:
        kpis = all_time.tiers[tier]
        arrivals.add_metric([tier], kpis.arrivals)
        for to_tier, reasons in kpis.escalations_to.items():
            for reason, count in reasons.items():
                escalations.add_metric([tier, to_tier, reason], count)
        for reason, count in kpis.bounces.items():
            bounces.add_metric([tier, reason], count)
        resolutions.add_metric([tier], kpis.resolutions)
        reopens.add_metric([tier], kpis.reopens)
        histogram.add_metric(
            [tier],
            [(le(bound), count) for bound, count in kpis.resolution_histogram.items()],
            kpis.resolution_seconds_sum,
        )
        backlog.add_metric([tier], snapshot.backlog[tier])
    for tier in TIER_ORDER:
        seen = all_time.tiers[tier].sla_breaches if tier in all_time.tiers else {}
        for kind in SlaKind:
            breaches.add_metric([tier, kind.value], seen.get(kind.value, 0))
    for reason in sorted(set(IGNORED_REASONS) | set(all_time.ignored)):
        ignored.add_metric([reason], all_time.ignored.get(reason, 0))

    fcr = _ratio_gauge(
        "support_first_contact_resolution_ratio",
        "Ended visits resolved at first contact (no escalation request, not reopened) ÷ ended visits.",
    )
    escalation = _ratio_gauge("support_escalation_ratio", "ticket.escalated from the tier ÷ arrivals at it.")
    reopen = _ratio_gauge("support_reopen_ratio", "Reopens of the tier's resolutions ÷ its resolutions.")
    satisfaction = _ratio_gauge(
        "support_satisfaction_ratio", "Ratings 4-5 ÷ ratings, for the tier of the rated resolution."
    )
    bounce_back = GaugeMetricFamily(
        "support_bounce_back_ratio",
        "Bounces into the tier ÷ its escalations (returned_with_fix) or escalation requests (handoff_incomplete).",
        labels=["tier", "reason", "window"],
    )
    # Untyped, not gauge: promtool reserves the `quantile` label for summaries, and a summary would
    # add _sum and _count series that are no counters in a 7d or 30d window. Queried like a gauge.
    resolution_time = UnknownMetricFamily(
        "support_resolution_time_seconds",
        "Time to resolution, exact nearest-rank quantiles.",
        labels=["tier", "window", "quantile"],
    )
    first_response = GaugeMetricFamily(
        "support_first_response_time_seconds",
        "Visit start to the tier's first response: mean and exact median.",
        labels=["tier", "window", "statistic"],
    )
    without_escalation = GaugeMetricFamily(
        "support_resolved_without_escalation_ratio",
        "Resolved tickets never escalated ÷ resolved tickets, by first resolution.",
        labels=["window"],
    )
    for window in WINDOWS:
        kpis_of = snapshot.windows[window]
        for tier in tiers:
            kpis = kpis_of.tiers[tier]
            for gauge, value in (
                (fcr, kpis.first_contact_resolution_ratio),
                (escalation, kpis.escalation_ratio),
                (reopen, kpis.reopen_ratio),
                (satisfaction, kpis.satisfaction_ratio),
            ):
                if value is not None:
                    gauge.add_metric([tier, window], value)
            for reason, value in kpis.bounce_back_ratio.items():
                bounce_back.add_metric([tier, reason, window], value)
            for quantile, seconds in kpis.resolution_time_seconds.items():
                resolution_time.add_metric([tier, window, quantile], seconds)
            for statistic, seconds in kpis.first_response_time_seconds.items():
                first_response.add_metric([tier, window, statistic], seconds)
        if kpis_of.resolved_without_escalation_ratio is not None:
            without_escalation.add_metric([window], kpis_of.resolved_without_escalation_ratio)
    return [
        arrivals,
        escalations,
        bounces,
        resolutions,
        reopens,
        breaches,
        ignored,
        histogram,
        backlog,
        fcr,
        escalation,
        bounce_back,
        reopen,
        satisfaction,
        resolution_time,
        first_response,
        without_escalation,
    ]


def le(bound: str) -> str:
    """A histogram bound as Prometheus' clients print it ("60.0", "1.2096e+06", "+Inf")."""
    return str(floatToGoString(float(bound)))  # type: ignore[no-untyped-call]


def _ratio_gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["tier", "window"])
