"""Wires intake: settings -> PostgreSQL, Kafka, the outbox relay, the HTTP API and the consumer.

Shutdown order (SIGTERM): the HTTP server stops accepting and finishes in-flight requests,
the consumer stops after its current batch, queued commits finish, the outbox drains to
Kafka, then connections close.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared import db, logs
from shared.kafka import make_broker, preflight, retrying, start_broker
from shared.ops import RequestMetrics, ops_router
from shared.settings import load
from services.intake.adapters.relay import OutboxRelay
from services.intake.adapters.store import PostgresStore
from services.intake.core.tickets import Accepted, Decision, Rejected, Replayed, Submission
from services.intake.handlers import commands as command_topic
from services.intake.handlers.http import BodySizeLimit, api_router, install_error_handlers
from services.intake.service import Batcher, Entry, process
from services.intake.settings import IntakeSettings, load_key_ring

log = logging.getLogger("intake")


_OUTCOME = {Accepted: "accepted", Replayed: "replayed", Rejected: "rejected"}


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: IntakeSettings) -> FastAPI:
    """The ASGI app; connections open in its lifespan, so tests can run it in-process."""
    keys = load_key_ring(settings)
    registry = CollectorRegistry()
    outcomes = Counter("support_intake_commands_total", "Commands decided by intake.",
                       ["transport", "outcome"], registry=registry)
    broker = make_broker(settings.kafka_bootstrap_servers, client_id="ladder-intake",
                         middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name="intake")])
    relay = OutboxRelay(settings.database_url, settings.kafka_bootstrap_servers, registry) if settings.intake_relay else None
    runtime = _Runtime()

    batch_seconds = Histogram("support_intake_batch_duration_seconds",
                              "Time to decide and commit one batch of commands.", ["transport"], registry=registry,
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
    batch_size = Histogram("support_intake_batch_commands", "Commands per committed batch.", ["transport"],
                           registry=registry, buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))

    def count(transport: str, decisions: Sequence[Decision]) -> None:
        tally = collections.Counter(_OUTCOME[type(decision)] for decision in decisions)
        for outcome, n in tally.items():
            outcomes.labels(transport, outcome).inc(n)

    async def run(entries: Sequence[Entry], transport: str) -> list[Decision]:
        started = time.perf_counter()
        decisions = await process(runtime.store, entries, now=_now)
        if relay is not None:
            relay.wake()
        batch_seconds.labels(transport).observe(time.perf_counter() - started)
        batch_size.labels(transport).observe(len(entries))
        count(transport, decisions)
        return decisions

    async def run_http(entries: list) -> list[Decision]:  # type: ignore[type-arg]
        return await retrying(lambda: run(entries, "http"), what="store http batch", attempts=3)

    command_topic.register(
        broker, keys=keys, process=lambda entries: run(entries, "kafka"), clock=_now,
        group_id=settings.intake_consumer_group, batch_size=settings.intake_commands_batch,
        max_bytes=settings.intake_max_command_bytes, consumers=settings.intake_command_consumers,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.database_url, max_size=settings.intake_db_pool_size,
                                    timeout=settings.startup_timeout_s)
        try:
            runtime.store = PostgresStore(pool)
            applied = await runtime.store.migrate()
            await start_broker(broker, settings.kafka_bootstrap_servers, settings.startup_timeout_s)
            if relay is not None:
                await relay.start()
            runtime.batcher = batcher = Batcher(run_http, max_batch=settings.intake_http_batch)
            await broker.start()
            log.info("intake ready", extra={"port": settings.intake_port, "migrations_applied": applied,
                                            "relay": relay is not None})
            yield
            await broker.stop()
            await batcher.close()
            if relay is not None:
                await relay.stop(settings.intake_shutdown_drain_s)
            log.info("intake stopped")
        finally:
            await pool.close()

    app = FastAPI(
        title="Ladder intake", version="1.0.0", lifespan=lifespan,
        description="Authenticated gateway that turns upstream ticket commands into ticket events. "
                    "Every write needs `Authorization: Bearer <API key>`.",
    )
    install_error_handlers(app)
    app.include_router(api_router(keys, runtime.submit))
    app.include_router(ops_router(registry, {"database": runtime.database_ready, "kafka": lambda: broker.ping(2.0)}))
    app.add_middleware(BodySizeLimit, max_bytes=settings.intake_max_body_bytes)
    app.add_middleware(RequestMetrics, registry=registry)
    return app


class _Runtime:
    """What exists only while the app runs (between lifespan start and stop)."""

    store: PostgresStore
    batcher: Batcher | None = None

    async def submit(self, submission: Submission) -> Decision:
        if self.batcher is None:
            raise ConnectionError("intake is not started")
        return await self.batcher.submit(submission)

    async def database_ready(self) -> bool:
        return self.batcher is not None and await db.ping(self.store.pool)


def main() -> None:
    settings = load(IntakeSettings)
    logs.configure("intake", settings.log_level)
    app = create_app(settings)
    asyncio.run(preflight(settings.kafka_bootstrap_servers, settings.database_url, settings.startup_timeout_s))
    # Long-lived start-up objects leave the collector's view, and young-generation passes run
    # less often: fewer and shorter pauses on the request path (measured by `make bench`).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(app, host=settings.intake_host, port=settings.intake_port, log_config=None, loop="uvloop",
                access_log=False, proxy_headers=False, server_header=False,
                timeout_graceful_shutdown=int(settings.intake_shutdown_drain_s))
