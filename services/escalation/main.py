"""Wires escalation on the delivery kit: the ticket-events consumer decides handoffs,
returns and timer changes in the kit's batch transaction; the SLA timer loop fires due
timers; the kit's relay publishes what both stage.

Stop order (SIGTERM): consumers finish their batch, the timer loop its pass, the outbox
drains, connections close.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from services.escalation.adapters.store import MIGRATIONS, EscalationStore, retention_rules
from services.escalation.adapters.timers import SlaTimerLoop
from services.escalation.handlers.events import EscalationHandler
from services.escalation.metrics import EscalationMetrics
from services.escalation.settings import EscalationSettings
from shared import retention
from shared.charter import charter_for_service
from shared.delivery.failures import Outage
from shared.service import ServiceRuntime, utc_now
from shared.service import main as run_service


def create_app(settings: EscalationSettings, *, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The ASGI app; connections open in its lifespan, so tests can run it in-process (with
    their own clock: the runtime and the timer loop share it)."""
    charter = charter_for_service(settings.charter)
    runtime = ServiceRuntime(
        name="escalation", schema=settings.schema_name, settings=settings, migrations=MIGRATIONS, clock=clock
    )
    store = EscalationStore(runtime.schema)
    metrics = EscalationMetrics(runtime.registry)
    runtime.consume_events(EscalationHandler(charter, store, runtime.topics.events, metrics))
    (events,) = runtime.consumers  # its stream time decides which timers are due
    timers = SlaTimerLoop(
        store=store,
        charter=charter,
        pool=lambda: runtime.pool,
        database_url=settings.database_url,
        events_topic=runtime.topics.events,
        clock=clock,
        committed=runtime.committed,
        stream=events.stream_time,
        outage=Outage("loop sla_timers", runtime.metrics.stalled),
        metrics=metrics,
        poll_s=settings.timer_poll_s,
        batch=settings.timer_batch,
    )
    runtime.on_start(timers.start, timers.stop)
    runtime.ready_check("sla_timers", timers.ready)
    retention.schedule(runtime, retention_rules(settings.retention))
    app = runtime.app(
        title="Ladder escalation",
        description="Enforces the tier charter's handoff rules and the return path, and fires SLA timers "
        "(ticket.escalated, ticket.bounced, ticket.sla_breached on support.ticket-events).",
    )
    app.state.runtime, app.state.timers = runtime, timers
    return app


def main() -> None:
    run_service("escalation", EscalationSettings, create_app)
