"""`GET /v1/kpis`: the snapshot the exporter serves, as JSON (what `ladder kpis` prints);
`GET /v1/kpis/weeks`: the same KPIs per ISO week (what `ladder report` shows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from services.metrics.adapters.exporter import Refresher
from services.metrics.adapters.store import ProjectionStore
from services.metrics.core.kpis import Snapshot
from services.metrics.core.retention import REPORT_WEEKS
from services.metrics.core.weekly import week_bounds, weeks_before
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


def weeks_router(store: ProjectionStore, pool: Callable[[], asyncpg.Pool]) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/kpis/weeks",
        summary="Every tier KPI per ISO week (UTC): `week` and the `previous` weeks before it, oldest first",
        description="The definitions of `/v1/kpis` with a week as the window: [Monday 00:00 UTC, next "
        "Monday 00:00 UTC). Public, like `/v1/kpis`.",
    )
    async def weeks(
        week: Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W49"])],
        previous: Annotated[int, Query(ge=0, le=REPORT_WEEKS)] = 4,
    ) -> JSONResponse:
        try:
            week_bounds(week)
        except ValueError as error:
            return JSONResponse({"error": "invalid_week", "detail": str(error)}, status_code=422)
        answer = []
        for name in [*weeks_before(week, previous), week]:
            since, until = week_bounds(name)
            kpis = await store.read_window(pool(), since, until)
            answer.append(
                {"week": name, "since": format_time(since), "until": format_time(until), "kpis": asdict(kpis)}
            )
        return JSONResponse({"weeks": answer})

    return router
