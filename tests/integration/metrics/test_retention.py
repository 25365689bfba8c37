"""Pruning the KPI projection changes no exported value: counted samples and daily sums no
window reads any more go; the durations the `all` quantiles rank stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from services.metrics.adapters.store import retention_rules
from services.metrics.handlers.events import KpiProjection
from shared import envelope as ce
from shared.delivery.events import EventConsumer
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.records import SourceRecord
from shared.retention import prune
from tests.integration.metrics.test_oracle import scripted
from tests.integration.metrics.test_store import store  # noqa: F401 - the fixture


async def test_pruning_changes_no_kpi_in_any_window(store, unique):  # noqa: F811
    projection, pool = store
    consumer = EventConsumer(
        service="metrics",
        schema=projection.schema,
        handler=KpiProjection(projection),
        metrics=DeliveryMetrics(CollectorRegistry()),
        pool=lambda: pool,
        dead_letter_topic="dlq",
    )
    now = datetime.now(UTC)
    events, _ = scripted(now, unique)  # tickets of 2, 12, 40 and 45 days ago
    records = [
        SourceRecord("events", 0, offset, 1, r.key, r.value, r.headers)
        for offset, r in enumerate(ce.encode(e) for e in events)
    ]
    await consumer.process(records)
    s = projection.schema
    before = await projection.read(pool, now)
    samples, durations = (
        await pool.fetchval(f"SELECT count(*) FROM {s}.sample"),
        await pool.fetchval(f"SELECT count(*) FROM {s}.sample WHERE micros IS NOT NULL"),
    )
    days = await pool.fetchval(f"SELECT count(DISTINCT day) FROM {s}.daily")

    removed = await prune(pool, s, retention_rules(timedelta(days=30)), now)

    assert removed["sample"] > 0 and removed["daily"] > 0 and removed["inbox"] == 0
    assert await pool.fetchval(f"SELECT count(*) FROM {s}.sample") == samples - removed["sample"]
    assert await pool.fetchval(f"SELECT count(*) FROM {s}.sample WHERE micros IS NOT NULL") == durations
    assert await pool.fetchval(f"SELECT count(DISTINCT day) FROM {s}.daily") < days
    assert await pool.fetchval(f"SELECT min(at) FROM {s}.sample WHERE micros IS NULL") >= now - timedelta(days=32)
    assert await projection.read(pool, now) == before
    # and a day later, when the windows have moved on, pruning again still changes nothing
    later = now + timedelta(days=1, hours=3)
    unpruned = await projection.read(pool, later)
    await prune(pool, s, retention_rules(timedelta(days=30)), later)
    assert await projection.read(pool, later) == unpruned
