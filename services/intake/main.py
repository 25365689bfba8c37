"""Wires intake on the delivery kit: the HTTP API and the commands consumer decide batches
in PostgreSQL (`service.process`); the kit's relay publishes what they stage.

Shutdown order (SIGTERM): the HTTP server stops accepting and finishes in-flight requests,
the consumer stops after its current batch, queued HTTP commits finish, the outbox drains
to Kafka, then connections close.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import Counter, Histogram

from services.intake.adapters.store import MIGRATIONS, PostgresStore, retention_rules, waiting_commands
from services.intake.asyncapi import asyncapi, asyncapi_html
from services.intake.core.limits import RateLimits
from services.intake.core.tickets import Accepted, Decision, Rejected, Replayed
from services.intake.handlers.body import BodySizeLimit
from services.intake.handlers.commands import batch_processor, read_command
from services.intake.handlers.errors import install_error_handlers
from services.intake.handlers.routes import api_router
from services.intake.handlers.webhooks import webhook_router
from services.intake.service import Batcher, Entry, QueueFull, process
from services.intake.settings import IntakeSettings, KeySource, load_helpdesks
from shared import retention
from shared.delivery.failures import Kind, Outage, classify, retrying
from shared.ops import RequestMetrics
from shared.service import ServiceRuntime
from shared.service import main as run_service

_OUTCOME = {Accepted: "accepted", Replayed: "replayed", Rejected: "rejected"}


def create_app(settings: IntakeSettings) -> FastAPI:
    """The ASGI app; connections open in its lifespan, so tests can run it in-process."""
    keys = KeySource(settings)
    helpdesks = load_helpdesks(settings)  # help desks connected by webhook (each a client of its own: issue 16)
    schema = settings.schema_name
    runtime = ServiceRuntime(name="intake", schema=schema, settings=settings, migrations=MIGRATIONS)
    registry = runtime.registry
    wait = timedelta(seconds=settings.unknown_ticket_wait_s)
    waiting = Counter(
        "support_intake_commands_waited_total",
        "Topic commands that waited for their ticket (read before its create, or behind one that did).",
        registry=registry,
    )
    outcomes = Counter(
        "support_intake_commands_total", "Commands decided by intake.", ["transport", "outcome"], registry=registry
    )
    batch_seconds = Histogram(
        "support_intake_batch_duration_seconds",
        "Time to decide and commit one batch of commands.",
        ["transport"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
    )
    batch_size = Histogram(
        "support_intake_batch_commands",
        "Commands per committed batch.",
        ["transport"],
        registry=registry,
        buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
    )

    async def run(entries: Sequence[Entry], transport: str) -> list[Decision]:
        started = time.perf_counter()
        outcome = await process(
            PostgresStore(runtime.pool, schema), entries, now=runtime.clock, topics=runtime.topics, wait=wait
        )
        runtime.committed()
        batch_seconds.labels(transport).observe(time.perf_counter() - started)
        batch_size.labels(transport).observe(len(entries))
        for name, count in collections.Counter(_OUTCOME[type(d)] for d in outcome.decisions).items():
            outcomes.labels(transport, name).inc(count)
        for code in outcome.dead_letters:
            runtime.metrics.dead_letters.labels(code).inc()
        waiting.inc(outcome.waiting)
        return outcome.decisions

    async def retry_waiting() -> None:
        """Read the waiting topic commands again, oldest first (service invariant 5)."""
        parked = await waiting_commands(runtime.pool, schema, settings.http_batch)
        if parked:
            entries = [
                replace(
                    read_command(w.source, keys.ring, max_bytes=settings.max_command_bytes, now=w.first_seen),
                    waiting=w.seq,
                )
                for w in parked
            ]
            await run(entries, "kafka")

    runtime.consume(
        runtime.topics.commands,
        batch_processor(
            lambda: keys.ring,
            process=lambda entries: run(entries, "kafka"),
            clock=runtime.clock,
            max_bytes=settings.max_command_bytes,
        ),
    )

    http = _Http(Outage("http commands", runtime.metrics.stalled))
    runtime.ready_check("http_commands", http.ready)
    limits = RateLimits(settings.rate_per_second, settings.burst)  # per client: API keys and help-desk connections

    async def start_http() -> None:
        http.batcher = Batcher(
            lambda entries: retrying(lambda: run(entries, "http"), what="http batch", attempts=3),
            max_batch=settings.http_batch,
            max_queue=settings.http_queue,
        )

    async def stop_http() -> None:
        if http.batcher is not None:
            await http.batcher.close()
            http.batcher = None

    runtime.on_start(start_http, stop_http)
    runtime.every("waiting", 1.0, retry_waiting)
    runtime.every("keys", 1.0, lambda: asyncio.to_thread(keys.refresh))
    retention.schedule(runtime, retention_rules(settings.retention))
    app = runtime.app(
        title="Ladder intake",
        routers=[
            api_router(lambda: keys.ring, http.submit, limits),
            webhook_router(helpdesks, http.submit, limits),
            contracts_router(),
        ],
        description="Authenticated gateway that turns upstream ticket commands into ticket events. "
        "Every write needs `Authorization: Bearer <API key>`. Types are strict: a boolean is `true` or `false` "
        '(never 0 or 1), an integer has no fraction (5 and 5.0 are the same JSON number; 5.5 and "5" are '
        "refused). Text is Unicode: a lone UTF-16 surrogate escape (`\\ud800`) is stored as U+FFFD.",
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, registry=registry)  # outermost: it counts the 413s too
    return app


def contracts_router() -> APIRouter:
    """The AsyncAPI document of the topics, beside the OpenAPI one FastAPI serves."""
    router = APIRouter(include_in_schema=False)
    document = asyncapi()
    page = asyncapi_html(document)

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document)

    @router.get("/asyncapi")
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(page)

    return router


class _Http:
    """The HTTP path's group commit, which exists only while the app runs. A failure that is
    not one request's (transient or systemic) is an outage of the path: reported by
    readiness and logged once per backoff step, not once per request."""

    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self.batcher: Batcher | None = None

    async def submit(self, submission: Entry) -> Decision:
        if self.batcher is None:
            raise ConnectionError("intake is not started")
        try:
            decision = await self.batcher.submit(submission)
        except QueueFull:
            raise  # load, not a fault: answered 503 by the handler, no outage
        except Exception as error:
            if classify(error) is not Kind.POISON:
                self.outage.failed(error)
            raise
        self.outage.healed()
        return decision

    async def ready(self) -> bool | str:
        return self.outage.ready()


def main() -> None:
    run_service("intake", IntakeSettings, create_app)
