"""The metrics service on a private events topic and a private schema: real Kafka, real
PostgreSQL, the app in this process or as real processes."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.main import create_app
from services.metrics.settings import MetricsSettings
from shared import envelope as ce
from shared.db import drop_schemas
from shared.kafka import client_options, topic_partitions
from tests.apps import in_process
from tests.kafka_tools import private_topics

PARTITIONS = 6


@pytest.fixture
async def private(platform, unique):
    """Fresh topics under a unique prefix and a schema name; both dropped afterwards."""
    schema = f"metrics_{unique}"
    try:
        async with private_topics(platform.kafka_bootstrap_servers, f"m{unique}.", PARTITIONS) as (prefix, topics):
            yield Private(prefix, schema, topics.events, platform.kafka_bootstrap_servers, platform.database_url)
    finally:
        await drop_schemas(platform.database_url, schema)


class Private:
    def __init__(self, prefix: str, schema: str, events: str, bootstrap: str, database_url: str) -> None:
        self.prefix, self.schema, self.events = prefix, schema, events
        self.bootstrap, self.database_url = bootstrap, database_url

    def env(self, group: str = "g1", **overrides: str) -> dict[str, str]:
        return {
            "LADDER_TOPIC_PREFIX": self.prefix,
            "METRICS_SCHEMA_NAME": self.schema,
            "METRICS_CONSUMER_GROUP": f"{self.prefix}{group}",
            "METRICS_REFRESH_INTERVAL_S": "0.3",
            **overrides,
        }

    async def publish(self, producer: AIOKafkaProducer, envelopes: Iterable[ce.Envelope]) -> None:
        for envelope in envelopes:
            record = ce.encode(envelope)
            await producer.send(self.events, record.value, key=record.key, headers=record.headers)
        await producer.flush()

    async def consumed(self, group: str = "g1", timeout: float = 60) -> None:
        """Wait until `group` has committed the end of every partition (everything is applied)."""
        partitions = await topic_partitions(self.bootstrap, self.events)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"{self.prefix}{group}",
            enable_auto_commit=False,
            **client_options(),
        )
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout
            while True:
                ends = await consumer.end_offsets(partitions)
                committed = {tp: await consumer.committed(tp) for tp in partitions}
                if all((committed[tp] or 0) >= end for tp, end in ends.items()):
                    return
                assert time.monotonic() < deadline, f"{group} did not catch up: {committed} < {ends}"
                await asyncio.sleep(0.3)
        finally:
            await consumer.stop()


def running_metrics(env: dict[str, str]):
    """The metrics app in this process (its consumers on the real broker)."""
    return in_process(create_app, MetricsSettings, env)


async def fresh_kpis(app, client: httpx.AsyncClient) -> dict:
    """The KPIs recomputed now (not waiting for the refresher's next turn)."""
    await app.state.refresher.refresh()
    return (await client.get("/v1/kpis")).json()


KPI_METRICS = frozenset(
    {
        "support_tier_arrivals",
        "support_escalations",
        "support_bounces",
        "support_resolutions",
        "support_reopens",
        "support_sla_breaches",
        "support_events_ignored",
        "support_resolution_duration_seconds",
        "support_backlog_tickets",
        "support_first_contact_resolution_ratio",
        "support_escalation_ratio",
        "support_bounce_back_ratio",
        "support_reopen_ratio",
        "support_satisfaction_ratio",
        "support_resolution_time_seconds",
        "support_first_response_time_seconds",
        "support_resolved_without_escalation_ratio",
    }
)


def kpi_series(metrics_text: str) -> dict[tuple[str, frozenset], float]:
    """Every KPI series of a /metrics page: (sample name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name in KPI_METRICS
        for sample in family.samples
    }


def kpi_lines(metrics_text: str) -> list[str]:
    """The KPI series of a /metrics page as text (what every replica must export alike)."""
    return sorted(
        line
        for line in metrics_text.splitlines()
        if line.split("{")[0]
        .split(" ")[0]
        .removesuffix("_total")
        .removesuffix("_bucket")
        .removesuffix("_count")
        .removesuffix("_sum")
        in KPI_METRICS
    )


def promtool_check(metrics_text: str) -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=metrics_text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def wait_until(probe: Callable[[], object], timeout: float = 60, pause: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(pause)


@pytest.fixture
async def producer(platform):
    producer = AIOKafkaProducer(
        bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", linger_ms=5, **client_options()
    )
    await producer.start()
    yield producer
    await producer.stop()
