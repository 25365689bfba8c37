"""escalation's own metrics (the kit's delivery metrics come with `ServiceRuntime`).
No per-ticket labels: tiers, kinds and verdicts are small closed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class EscalationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.handoffs = Counter(
            "support_escalation_handoffs_total",
            "Handoff and return requests decided, by verdict (escalated, bounced, returned).",
            ["verdict"],
            registry=registry,
        )
        self.breaches = Counter(
            "support_escalation_sla_timers_fired_total",
            "SLA timers that fired (each emitted one ticket.sla_breached), by tier and kind.",
            ["tier", "kind"],
            registry=registry,
        )
        self.timers_pending = Gauge(
            "support_escalation_sla_timers_pending",
            "SLA timers armed and not yet fired or cancelled (sampled every 10 s).",
            registry=registry,
        )
        self.timer_overdue = Gauge(
            "support_escalation_sla_timer_overdue_seconds",
            "How far past its deadline the earliest pending timer is (0 when none is due).",
            registry=registry,
        )
        self.timer_lag = Histogram(
            "support_escalation_sla_timer_lag_seconds",
            "Time from a timer's deadline to its firing.",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
