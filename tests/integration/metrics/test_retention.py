"""Pruning the KPI projection changes no exported value: counted samples and daily sums no
window reads any more go; the durations the `all` quantiles rank stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from services.metrics.adapters.read_store import ReadStore
from services.metrics.adapters.store import retention_rules
from services.metrics.core.retention import REPORT_WEEKS, keep_daily
from services.metrics.core.weekly import week_bounds, week_of, weeks_before
from services.metrics.handlers.events import KpiProjection
from shared import envelope as ce
from shared.delivery.events import EventConsumer
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.records import SourceRecord
from shared.retention import prune
from tests.integration.metrics.test_oracle import scripted
from tests.integration.metrics.test_store import store  # noqa: F401 - the fixture
from tests.unit.metrics.stories import Story


async def test_pruning_changes_no_kpi_in_any_window(store, unique):  # noqa: F811
    projection, pool = store
    consumer = EventConsumer(
        service="metrics",
        schema=projection.schema,
        handler=KpiProjection(projection, ReadStore(projection.schema)),
        metrics=DeliveryMetrics(CollectorRegistry()),
        pool=lambda: pool,
        dead_letter_topic="dlq",
    )
    now = datetime.now(UTC)
    events, _ = scripted(now, unique)  # tickets of 2, 12, 40 and 45 days ago
    events += Story(f"old-{unique}", now - timedelta(days=120)).routed(1, "L1").resolved(30).events
    records = [
        SourceRecord("events", 0, offset, 1, r.key, r.value, r.headers)
        for offset, r in enumerate(ce.encode(e) for e in events)
    ]
    await consumer.process(records)
    s = projection.schema
    before = await projection.read(pool, now)
    last_week = week_of(now - timedelta(days=7))
    report_weeks = [week_bounds(w) for w in [*weeks_before(last_week, REPORT_WEEKS), last_week, week_of(now)]]
    weeks_before_pruning = [await projection.read_window(pool, since, until) for since, until in report_weeks]
    samples, durations = (
        await pool.fetchval(f"SELECT count(*) FROM {s}.sample"),
        await pool.fetchval(f"SELECT count(*) FROM {s}.sample WHERE micros IS NOT NULL"),
    )
    days = await pool.fetchval(f"SELECT count(DISTINCT day) FROM {s}.daily")
    timeline = await pool.fetchval(f"SELECT count(*) FROM {s}.ticket_event")

    removed = await prune(pool, s, retention_rules(timedelta(days=30)), now)

    assert removed["sample"] > 0 and removed["daily"] > 0 and removed["inbox"] == 0
    assert await pool.fetchval(f"SELECT count(*) FROM {s}.sample") == samples - removed["sample"]
    assert await pool.fetchval(f"SELECT count(*) FROM {s}.sample WHERE micros IS NOT NULL") == durations
    assert await pool.fetchval(f"SELECT count(DISTINCT day) FROM {s}.daily") < days
    assert await pool.fetchval(f"SELECT min(at) FROM {s}.sample WHERE micros IS NULL") >= now - timedelta(days=32)
    assert await projection.read(pool, now) == before
    # timelines keep the retention's events, and only those
    assert 0 < removed["ticket_event"] < timeline
    assert await pool.fetchval(f"SELECT min(at) FROM {s}.ticket_event") >= now - timedelta(days=30)
    # the weekly report's weeks (last week and the REPORT_WEEKS before it, this week) keep theirs
    assert [await projection.read_window(pool, since, until) for since, until in report_weeks] == weeks_before_pruning
    (oldest,) = [i for i, (since, until) in enumerate(report_weeks) if since <= now - timedelta(days=45) < until]
    assert weeks_before_pruning[oldest].tiers["L1"].arrivals > 0  # the 45-day-old tickets, beyond the 32 days
    assert await pool.fetchval(f"SELECT min(day) FROM {s}.daily") >= (now - keep_daily(timedelta(days=30))).date()
    # and a day later, when the windows have moved on, pruning again still changes nothing
    later = now + timedelta(days=1, hours=3)
    unpruned = await projection.read(pool, later)
    await prune(pool, s, retention_rules(timedelta(days=30)), later)
    assert await projection.read(pool, later) == unpruned
