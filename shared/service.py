"""One service process, wired the same way for every Ladder service.

`ServiceRuntime` owns what each service has: the PostgreSQL pool (its schema migrated,
then the delivery kit's tables), the Kafka broker with its consumers, the outbox relay,
the metrics registry and `/healthz`, `/readyz`, `/metrics`. A service adds its handlers,
its own start/stop steps and HTTP routes, and gets an ASGI app; `serve` runs it.

Start order: pool, migrations, broker connection, relay, the service's own steps,
consumers, then periodic work (`every`). Stop order (SIGTERM), within `shutdown_timeout_s`:
HTTP drains (uvicorn), periodic work stops, consumers finish their batch and stop, the
service's own steps stop, the outbox drains, connections close. `/readyz` is 503 while any
part is down or stalled, and names the cause.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from shared import db, logs
from shared.delivery.consumer import BatchConsumer, Process
from shared.delivery.events import EventConsumer, EventHandler
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.relay import OutboxRelay
from shared.kafka import make_broker, preflight, start_broker
from shared.ops import ReadyCheck, ops_router
from shared.periodic import Periodic
from shared.settings import ServiceSettings, load

log = logging.getLogger(__name__)
SERVICES_SHARING_A_DATABASE = 4  # intake, router, escalation and metrics, each as busy
DELIVERY_MIGRATIONS = Path(__file__).parent / "delivery" / "migrations"
Step = Callable[[], Awaitable[object]]


def utc_now() -> datetime:
    """The services' clock (tests pass their own)."""
    return datetime.now(UTC)


class ServiceRuntime:
    def __init__(
        self,
        *,
        name: str,
        schema: str,
        settings: ServiceSettings,
        migrations: Path | None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.name, self.schema, self.settings = name, db.schema_name(schema), settings
        self.topics = settings.topics
        self.clock = clock
        self.registry = CollectorRegistry()
        self.metrics = DeliveryMetrics(self.registry)
        self.broker = make_broker(
            settings.kafka_bootstrap_servers,
            client_id=f"ladder-{name}",
            security=settings,
            middlewares=[KafkaPrometheusMiddleware(registry=self.registry, app_name=name)],
        )
        self.relay = (
            OutboxRelay(
                service=name,
                schema=schema,
                database_url=settings.database_url,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                security=settings,
                metrics=self.metrics,
            )
            if settings.relay
            else None
        )
        self.consumers: list[BatchConsumer] = []
        self._migrations = migrations
        self._pool: asyncpg.Pool | None = None
        self._starts: list[Step] = []
        self._stops: list[Step] = []
        self._periodic: list[Periodic] = []
        self._on_change: list[Periodic] = []
        self._started = False
        self._checks: dict[str, ReadyCheck] = {
            "database": self._database_ready,
            "kafka": self._kafka_ready,
            "relay": self._relay_ready,
        }

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ConnectionError(f"{self.name} is not started")
        return self._pool

    def committed(self) -> None:
        """Called after each committed consumer batch: the relay publishes what it staged at
        once, and work driven by change (`every(..., on_change=...)`) is woken."""
        if self.relay is not None:
            self.relay.wake()
        for periodic in self._on_change:
            periodic.wake()

    # --- what a service adds --------------------------------------------------------------

    def consume(self, topic: str, process: Process) -> BatchConsumer:
        consumer = BatchConsumer(
            service=self.name,
            schema=self.schema,
            topic=topic,
            group_id=self.settings.consumer_group,
            process=process,
            metrics=self.metrics,
            dead_letter_topic=self.topics.dead_letter,
            members=self.settings.consumers,
            batch_size=self.settings.batch_size,
            fetch_wait_ms=self.settings.fetch_wait_ms,
            fetch_min_bytes=self.settings.fetch_min_bytes,
            poll_ms=self.settings.poll_ms,
            on_committed=self.committed,
        )
        consumer.register(self.broker)
        self.consumers.append(consumer)
        self._checks["consumers"] = self._consumers_ready
        return consumer

    def consume_events(self, handler: EventHandler, topic: str | None = None) -> EventConsumer:
        """Consume the ticket events with `handler` (dedup, staleness, dead letters)."""
        events = EventConsumer(
            service=self.name,
            schema=self.schema,
            handler=handler,
            metrics=self.metrics,
            pool=lambda: self.pool,
            dead_letter_topic=self.topics.dead_letter,
            clock=self.clock,
        )
        self.consume(topic or self.topics.events, events.process)
        return events

    def on_start(self, start: Step, stop: Step | None = None) -> None:
        """A service step run after the relay starts and before consumers; `stop` runs
        after the consumers stopped, before the outbox drains."""
        self._starts.append(start)
        if stop is not None:
            self._stops.append(stop)

    def every(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], Awaitable[object]],
        *,
        on_change: Callable[[], float] | None = None,
    ) -> Periodic:
        """Periodic work (`shared.periodic`): `step` every `interval_s` once the consumers
        run, stopped before them; its failures are reported by readiness check `name`. With
        `on_change`, also soon after each committed batch, but no sooner than `on_change()`
        seconds after the previous step began."""
        periodic = Periodic(
            name, step, interval_s=interval_s, stalled=self.metrics.stalled, soonest=on_change or (lambda: 0.0)
        )
        self._periodic.append(periodic)
        if on_change is not None:
            self._on_change.append(periodic)
        self._checks[name] = periodic.ready
        return periodic

    def ready_check(self, name: str, check: ReadyCheck) -> None:
        self._checks[name] = check

    # --- the app --------------------------------------------------------------------------

    def app(
        self, *, title: str, description: str, version: str = "1.0.0", routers: Iterable[APIRouter] = ()
    ) -> FastAPI:
        app = FastAPI(title=title, description=description, version=version, lifespan=self._lifespan)
        for router in routers:
            app.include_router(router)
        app.include_router(ops_router(self.registry, self._checks))
        return app

    async def _database_ready(self) -> bool:
        return self._pool is not None and await db.ping(self._pool)

    async def _kafka_ready(self) -> bool:
        return self._started and await self.broker.ping(2.0)

    async def _consumers_ready(self) -> bool | str:
        if not self._started:
            return False
        causes = [cause for consumer in self.consumers if isinstance(cause := consumer.ready(), str)]
        return "; ".join(causes) if causes else True

    async def _relay_ready(self) -> bool:
        return self.relay is None or self.relay.healthy()

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        self._pool = await db.create_pool(
            settings.database_url, max_size=settings.db_pool_size, timeout=settings.startup_timeout_s
        )
        lag: asyncio.Task[None] | None = None
        try:
            applied = await migrate(self._pool, self.schema, self._migrations)
            await self._check_lock_table()
            await self._check_collation()
            for consumer in self.consumers:
                consumer.pool = self._pool
            await start_broker(self.broker, settings.kafka_bootstrap_servers, settings.startup_timeout_s, settings)
            if self.relay is not None:
                await self.relay.start()
            for start in self._starts:
                await start()
            await self.broker.start()
            for periodic in self._periodic:
                await periodic.start()
            self._started = True
            lag = asyncio.create_task(self._measure_lag(), name=f"{self.name}-lag")
            log.info(
                f"{self.name} ready",
                extra={
                    "port": settings.port,
                    "migrations_applied": applied,
                    "relay": self.relay is not None,
                    "consumer_members": len(self.consumers) * settings.consumers,
                },
            )
            try:
                yield
            finally:  # also when the app's body failed: consumers, steps and the relay stop
                self._started = False
                await self._stop_within(settings.shutdown_timeout_s)
                log.info(f"{self.name} stopped")
        finally:
            if lag is not None:
                lag.cancel()
            await self._pool.close()
            self._pool = None

    async def _check_lock_table(self) -> None:
        """Warn once when PostgreSQL's shared lock table is small for the batches: a batch holds
        an advisory lock per ticket (intake also per command id) until it commits, and a full
        table fails every transaction with "out of shared memory" (retried, but slow)."""
        capacity = await db.lock_table_size(self.pool)
        mine = 2 * self.settings.consumers * self.settings.batch_size * len(self.consumers)
        if capacity < SERVICES_SHARING_A_DATABASE * mine:
            log.warning(
                "PostgreSQL's lock table is small for these batches: raise max_locks_per_transaction "
                "(README: PostgreSQL) or lower the batch size",
                extra={"lock_table": capacity, "locks_this_service_may_hold": mine},
            )

    async def _check_collation(self) -> None:
        """Warn once when the database compares text through a locale's collation: every key
        is an id, and `strcoll` in every index comparison costs PostgreSQL CPU (about 6% of it
        in the pipeline bench, on `C.UTF-8`). Fixed when the database is created."""
        collation = await db.collation(self.pool)
        if collation not in ("C", "POSIX"):
            log.warning(
                "PostgreSQL compares ids through a locale's collation: create the database with "
                "LC_COLLATE 'C' (README: PostgreSQL)",
                extra={"collation": collation},
            )

    async def _stop_within(self, budget: float) -> None:
        deadline = time.monotonic() + budget
        for periodic in self._periodic:
            await periodic.stop()
        await self.broker.stop()  # consumers finish the batch in hand (FastStream's graceful timeout)
        for stop in reversed(self._stops):
            await stop()
        if self.relay is not None:
            await self.relay.stop(max(deadline - time.monotonic(), 1.0))

    async def _measure_lag(self) -> None:
        while True:
            await asyncio.sleep(5)
            for consumer in self.consumers:
                try:
                    await consumer.measure_lag()
                except Exception:
                    log.debug("lag sample failed", exc_info=True)


async def migrate(pool: asyncpg.Pool, schema: str, migrations: Path | None) -> list[str]:
    """The service's own migrations, then the delivery kit's tables in the same schema."""
    applied = await db.migrate(pool, schema, migrations) if migrations is not None else []
    return applied + await db.migrate(pool, schema, DELIVERY_MIGRATIONS, ledger="delivery_migrations")


def serve(app: FastAPI, settings: ServiceSettings, *, http_drain_s: float = 5.0) -> None:
    """Fail fast on what points nowhere, then serve until SIGTERM."""
    asyncio.run(
        preflight(settings.kafka_bootstrap_servers, settings.database_url, settings.startup_timeout_s, settings)
    )
    # Long-lived start-up objects leave the collector's view, and young-generation passes run
    # less often: fewer and shorter pauses on the hot path (measured by `make bench`).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        loop="uvloop",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=int(http_drain_s),
    )


def main(name: str, settings_class: type[ServiceSettings], create_app: Callable[[Any], FastAPI]) -> None:
    """The entry point of `python -m services.<name>`: settings, logs, app, serve."""
    settings = load(settings_class)
    logs.configure(name, settings.log_level)
    serve(create_app(settings), settings)
