"""`GET /v1/kpis`: the snapshot the exporter serves, as JSON (what `ladder kpis` prints)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.metrics.adapters.exporter import Refresher
from services.metrics.core.kpis import Snapshot
from shared.envelope import format_time


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "computed_at": format_time(snapshot.computed_at),
        "tiers": snapshot.tiers,
        "backlog": snapshot.backlog,
        "windows": {name: asdict(window) for name, window in snapshot.windows.items()},
    }


def kpis_router(refresher: Refresher) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/kpis",
        summary="Every tier KPI per window (7d, 30d, all), with the counts behind them",
        description="Ratios and times with no sample yet are null (or missing from their map). "
        "Durations in seconds; `all` holds the all-time counters. 503 until the first "
        "computation after start.",
    )
    async def kpis() -> JSONResponse:
        snapshot = refresher.snapshot
        if snapshot is None:
            return JSONResponse({"detail": "KPIs not computed yet"}, status_code=503)
        return JSONResponse(snapshot_json(snapshot))

    return router
