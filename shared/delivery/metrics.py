"""What an SRE needs from every service's delivery machinery, under one set of names
(the Prometheus `job` label tells the services apart; deploy/prometheus alerts on these)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RELAY_ERROR_KINDS = ("database", "broker", "other")


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dead_letters = Counter(
            "support_dead_letters_total", "Records dead-lettered, by reason code.", ["reason"], registry=registry
        )
        self.outbox_pending = Gauge(
            "support_outbox_pending_records",
            "Records committed but not yet published (sampled each second).",
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "support_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox record (0 when empty).",
            registry=registry,
        )
        self.outbox_published = Counter(
            "support_outbox_published_total", "Records the relay published.", ["topic"], registry=registry
        )
        self.relay_errors = Counter(
            "support_outbox_relay_errors_total", "Relay passes that failed, by cause.", ["kind"], registry=registry
        )
        for kind in RELAY_ERROR_KINDS:  # exported at 0 from the start: no errors is data too
            self.relay_errors.labels(kind)
        self.outbox_quarantined = Counter(
            "support_outbox_quarantined_total",
            "Records the broker refused for good, parked in outbox_quarantine.",
            registry=registry,
        )
        self.relay_leader = Gauge(
            "support_outbox_relay_leader", "1 while this process publishes the outbox.", registry=registry
        )
        self.consumer_lag = Gauge(
            "support_consumer_lag_records",
            "Records on the partition not yet consumed by this process.",
            ["topic", "partition"],
            registry=registry,
        )
        self.events_ignored = Counter(
            "support_consumer_events_ignored_total",
            "Consumed events this process left without effect, by reason.",
            ["reason"],
            registry=registry,
        )
        self.stalled = Gauge(
            "support_stalled",
            "1 while a part of this service (a consumer, a periodic loop) cannot make progress "
            "and is paused, backing off; /readyz names the cause.",
            ["part"],
            registry=registry,
        )
        self.batches = Counter(
            "support_consumer_batches_total", "Consumed batches, by outcome.", ["outcome"], registry=registry
        )
        self.batch_seconds = Histogram(
            "support_consumer_batch_duration_seconds",
            "Time to process and commit one consumed batch.",
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
        )
