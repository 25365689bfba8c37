"""Wires router on the delivery kit: the tier charter, the ticket-events consumer (Routing)
and the periodic pass over waiting tickets (WaitingTickets).

Start (after the kit's migrations and relay): every roster agent gets a seat, then the
consumers, then the periodic pass. Stop (SIGTERM): the pass stops, consumers finish their
batch, the outbox drains.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from services.router.adapters.store import MIGRATIONS
from services.router.handlers.events import Routing
from services.router.handlers.waiting import WaitingTickets
from services.router.metrics import RouterMetrics
from services.router.settings import RouterSettings
from shared import retention
from shared.charter import charter_for_service
from shared.service import ServiceRuntime, utc_now
from shared.service import main as run_service


def create_app(settings: RouterSettings, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The ASGI app; connections open in its lifespan, so tests can run it in-process (with
    their own clock). An invalid charter stops here, one line per problem."""
    charter = charter_for_service(settings.charter)
    runtime = ServiceRuntime(
        name="router", schema=settings.schema_name, settings=settings, migrations=MIGRATIONS, clock=clock
    )
    metrics = RouterMetrics(runtime.registry)
    routing = Routing(charter, runtime.schema, runtime.topics.events, metrics)
    runtime.consume_events(routing)
    waiting = WaitingTickets(
        charter=charter,
        schema=runtime.schema,
        topic=runtime.topics.events,
        pool=lambda: runtime.pool,
        clock=clock,
        metrics=metrics,
        committed=runtime.committed,
    )
    runtime.on_start(waiting.sync_roster)
    runtime.every("assignment", settings.assign_interval_s, waiting.pass_once)
    # Router's tickets are kept (a reopen goes back to the tier that resolved it): only the
    # kit's dedup tables are pruned.
    retention.schedule(runtime, retention.kit_rules(settings.retention))
    app = runtime.app(
        title="Ladder router",
        description="Decides who owns each ticket (tier, queue, agent) from the tier charter and emits ticket.routed.",
    )
    app.state.runtime, app.state.waiting = runtime, waiting
    return app


def main() -> None:
    run_service("router", RouterSettings, create_app)
