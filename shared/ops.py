"""Operational HTTP endpoints every service serves: `/healthz`, `/readyz`, `/metrics`,
and request metrics for services with an HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# True when ready; False or a one-line cause (never secrets or client data) when not.
ReadyCheck = Callable[[], Awaitable[bool | str]]


def ops_router(registry: CollectorRegistry, checks: Mapping[str, ReadyCheck]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(check() for check in checks.values()), return_exceptions=True)
        status = {name: result is True for name, result in zip(checks, results, strict=True)}
        causes = {
            name: result if isinstance(result, str) else type(result).__name__
            for name, result in zip(checks, results, strict=True)
            if isinstance(result, str | BaseException)
        }
        ready = all(status.values())
        body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": status}
        if causes:
            body["causes"] = causes
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestMetrics:
    """ASGI middleware: request count and latency by route template (never by raw path,
    which would carry ticket ids into label values)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "support_http_requests_total", "HTTP requests handled.", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "support_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.requests.labels(scope["method"], template, str(status)).inc()
            self.latency.labels(scope["method"], template).observe(time.perf_counter() - start)
