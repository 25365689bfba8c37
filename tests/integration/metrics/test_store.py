"""The projection store on real PostgreSQL (services/metrics/adapters/store.py): the sums
equal the samples, quantiles equal `percentile_disc`, windows are exact to the microsecond."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from services.metrics.adapters.store import MIGRATIONS, ProjectionStore
from services.metrics.core.visits import Kind, Sample, duration_bucket
from services.metrics.handlers.events import KpiProjection
from shared import envelope as ce
from shared.db import create_pool, drop_schemas
from shared.delivery.events import EventConsumer
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.records import SourceRecord
from shared.service import migrate
from tests.integration.metrics.test_oracle import scripted


@pytest.fixture
async def store(platform, unique):
    schema = f"metrics_store_{unique}"
    pool = await create_pool(platform.database_url, max_size=4)
    await migrate(pool, schema, MIGRATIONS)
    yield ProjectionStore(schema), pool
    await pool.close()
    await drop_schemas(platform.database_url, schema)


async def test_the_daily_sums_and_the_totals_equal_the_samples(store, unique):
    projection, pool = store
    consumer = EventConsumer(
        service="metrics",
        schema=projection.schema,
        handler=KpiProjection(projection),
        metrics=DeliveryMetrics(CollectorRegistry()),
        pool=lambda: pool,
        dead_letter_topic="dlq",
    )
    events, _ = scripted(datetime.now(UTC), unique)
    records = []
    for offset, envelope in enumerate(events):
        record = ce.encode(envelope)
        records.append(SourceRecord("events", 0, offset, 1, record.key, record.value, record.headers))
    for start in range(0, len(records), 37):  # many batches: many shards
        await consumer.process(records[start : start + 37])
    s = projection.schema
    samples = await pool.fetch(
        f"SELECT (at AT TIME ZONE 'UTC')::date AS day, kind, tier, detail, sum(n) AS n, "
        f"sum(good) AS good, coalesce(sum(micros), 0) AS micros FROM {s}.sample "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    )
    daily = await pool.fetch(
        f"SELECT day, kind, tier, detail, sum(n) AS n, sum(good) AS good, sum(micros) AS micros "
        f"FROM {s}.daily GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    )
    total = await pool.fetch(
        f"SELECT kind, tier, detail, sum(n) AS n, sum(good) AS good, sum(micros) AS micros "
        f"FROM {s}.total GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    all_days = await pool.fetch(
        f"SELECT kind, tier, detail, sum(n) AS n, sum(good) AS good, "
        f"coalesce(sum(micros), 0) AS micros FROM {s}.sample GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    assert len(samples) > 100
    assert [tuple(row) for row in daily] == [tuple(row) for row in samples]
    assert [tuple(row) for row in total] == [tuple(row) for row in all_days]
    assert await pool.fetchval(f"SELECT count(DISTINCT shard) FROM {s}.total") > 1


async def test_quantiles_equal_percentile_disc_and_windows_are_exact_to_the_microsecond(store):
    projection, pool = store
    now = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
    rng = random.Random(11)
    samples = []
    for kind, tier, count in (
        (Kind.RESOLUTION, "L1", 4000),
        (Kind.RESOLUTION, "L2", 70),
        (Kind.RESOLUTION, "L3", 1),
        (Kind.FIRST_RESPONSE, "L1", 999),
        (Kind.FIRST_RESPONSE, "L2", 24),
    ):
        for _ in range(count):
            micros = rng.choice(
                [
                    rng.randrange(0, 10**13),
                    rng.randrange(0, 10**8),
                    3_600_000_000,  # ties
                    60_000_000,
                    60_000_001,
                ]
            )  # a bucket's bound and just past it
            at = now - timedelta(microseconds=rng.randrange(0, 60 * 86400 * 10**6))
            samples.append(Sample(kind, tier, at, str(duration_bucket(micros)), micros=micros))
    for days in (7, 30):  # on each window's edge: in, and one microsecond out
        edge = now - timedelta(days=days)
        samples += [
            Sample(Kind.RESOLUTION, "L2", edge, str(duration_bucket(7)), micros=7),
            Sample(Kind.RESOLUTION, "L2", edge - timedelta(microseconds=1), str(duration_bucket(9)), micros=9),
        ]
    rng.shuffle(samples)
    for start in range(0, len(samples), 500):
        async with pool.acquire() as conn, conn.transaction():
            await projection.save(conn, {}, samples[start : start + 500])

    kpis = await projection.read(pool, now)
    for window, since in (("7d", now - timedelta(days=7)), ("30d", now - timedelta(days=30)), ("all", None)):
        for tier in ("L1", "L2", "L3"):
            exact = await pool.fetchrow(
                "SELECT count(*) FILTER (WHERE kind = 'resolution') AS resolutions, "
                "percentile_disc(0.5) WITHIN GROUP (ORDER BY micros) FILTER (WHERE kind = 'resolution') AS p50, "
                "percentile_disc(0.9) WITHIN GROUP (ORDER BY micros) FILTER (WHERE kind = 'resolution') AS p90, "
                "count(*) FILTER (WHERE kind = 'first_response') AS responses, "
                "avg(micros) FILTER (WHERE kind = 'first_response') AS mean, "
                "percentile_disc(0.5) WITHIN GROUP (ORDER BY micros) FILTER (WHERE kind = 'first_response') AS median "
                f"FROM {projection.schema}.sample WHERE tier = $1 AND ($2::timestamptz IS NULL OR at >= $2)",
                tier,
                since,
            )
            computed = kpis.windows[window].tiers[tier]
            assert computed.resolutions == exact["resolutions"], (window, tier)
            assert computed.first_responses == exact["responses"], (window, tier)
            expected_times = {"0.5": exact["p50"] / 1e6, "0.9": exact["p90"] / 1e6} if exact["resolutions"] else {}
            assert computed.resolution_time_seconds == expected_times, (window, tier)
            if exact["responses"]:
                assert computed.first_response_time_seconds["median"] == exact["median"] / 1e6
                assert computed.first_response_time_seconds["mean"] == pytest.approx(
                    float(exact["mean"]) / 1e6, rel=1e-12
                )
            else:
                assert computed.first_response_time_seconds == {}
    assert kpis.windows["all"].tiers["L2"].resolutions == 74
