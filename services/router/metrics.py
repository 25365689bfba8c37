"""router's own metrics (next to the delivery kit's). No per-ticket or per-agent labels:
tiers, reasons and queues come from the charter and the event catalogue, so they are few."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.router.core.dispatch import Routed


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.routed = Counter(
            "support_router_routed_total",
            "ticket.routed events committed, by tier and reason.",
            ["tier", "reason"],
            registry=registry,
        )
        self.queued = Gauge(
            "support_router_queued_tickets",
            "Open tickets nobody is assigned to, by tier and queue (shadow queues included).",
            ["tier", "queue"],
            registry=registry,
        )
        self.on_shift = Gauge(
            "support_router_agents_on_shift", "Agents taking tickets now, by tier.", ["tier"], registry=registry
        )
        self._queues: set[tuple[str, str]] = set()

    def count(self, routed: Iterable[Routed]) -> None:
        for event in routed:
            self.routed.labels(event.tier.value, event.reason.value).inc()

    def queue_depths(self, depths: Iterable[tuple[str, str, int]]) -> None:
        seen = set()
        for tier, queue, count in depths:
            self.queued.labels(tier, queue).set(count)
            seen.add((tier, queue))
        for tier, queue in self._queues - seen:  # emptied since the last sample
            self.queued.labels(tier, queue).set(0)
        self._queues |= seen
