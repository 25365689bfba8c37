"""Wires metrics on the delivery kit: every ticket event is projected into PostgreSQL in the
transaction that claims it (`KpiProjection`); a refresher computes the KPIs from there (at
start, soon after each committed batch, at least every METRICS_REFRESH_INTERVAL_S) and
`/metrics` and `/v1/kpis` serve that snapshot. Metrics publishes nothing; the kit's relay only carries its dead letters.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.core.auth import KeyRing, KeyRingConfig
from services.metrics.adapters.exporter import KpiCollector, Refresher
from services.metrics.adapters.read_store import ReadStore
from services.metrics.adapters.store import MIGRATIONS, ProjectionStore, retention_rules
from services.metrics.handlers.events import KpiProjection
from services.metrics.handlers.http import kpis_router, weeks_router
from services.metrics.handlers.read_api import read_router
from services.metrics.settings import MetricsSettings
from shared import retention
from shared.charter import charter_for_service
from shared.service import ServiceRuntime
from shared.service import main as run_service
from shared.settings import ConfigError

REFRESH_SHARE = 9  # a change-driven refresh waits nine of its own durations: <= a tenth of the time


def read_keys(settings: MetricsSettings) -> KeyRing | None:
    """The keys the read API accepts (action `read`); None: none configured (per-ticket reads refused)."""
    if not (settings.api_keys or settings.api_keys_file):
        return None
    try:
        text = settings.api_keys or settings.api_keys_file.read_text()  # type: ignore[union-attr]
        return KeyRing(KeyRingConfig.model_validate_json(text))
    except (OSError, ValueError) as error:
        raise ConfigError(f"invalid environment variable METRICS_API_KEYS_FILE: {type(error).__name__}") from None


def create_app(settings: MetricsSettings) -> FastAPI:
    """The ASGI app; connections open in its lifespan, so tests can run it in-process."""
    runtime = ServiceRuntime(name="metrics", schema=settings.schema_name, settings=settings, migrations=MIGRATIONS)
    store, read = ProjectionStore(runtime.schema), ReadStore(runtime.schema)
    runtime.consume_events(KpiProjection(store, read))
    charter = charter_for_service(settings.charter)
    keys = read_keys(settings)
    refresher = Refresher(store, lambda: runtime.pool, clock=runtime.clock)
    runtime.registry.register(KpiCollector(refresher, clock=runtime.clock))
    runtime.on_start(refresher.refresh)  # before the consumers: a scrape never waits
    runtime.every(  # driven by change: a committed batch shows in the KPIs within a refresh gap
        "kpis",
        settings.refresh_interval_s,
        refresher.refresh,
        on_change=lambda: max(settings.refresh_gap_s, REFRESH_SHARE * refresher.duration_s),
    )
    retention.schedule(runtime, retention_rules(settings.retention))
    app = runtime.app(
        title="Ladder metrics",
        routers=[
            kpis_router(refresher),
            weeks_router(store, lambda: runtime.pool),
            read_router(read, lambda: runtime.pool, charter, keys, runtime.clock),
        ],
        description="Exact tier KPIs projected from support.ticket-events: `/metrics` for "
        "Prometheus, `/v1/kpis` as JSON.",
    )
    app.state.runtime, app.state.refresher = runtime, refresher
    return app


def main() -> None:
    run_service("metrics", MetricsSettings, create_app)
