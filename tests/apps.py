"""Services run inside the test process, and the PostgreSQL schemas tests create, dropped."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

SESSION_SCHEMAS: list[str] = []  # dropped when the session ends (tests/conftest.py)


def private_schema(service: str) -> str:
    """A schema of the session's own: rows an earlier run left behind (say, outbox records
    for topics since deleted) never reach this run's services."""
    name = f"{service}_t_{uuid.uuid4().hex[:10]}"
    SESSION_SCHEMAS.append(name)
    return name


@asynccontextmanager
async def in_process(
    create: Callable[..., FastAPI], settings_class: type, env: dict[str, str], **options: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """`create(settings_class(), **options)` with `env` for settings, its lifespan running
    (consumers and relay on the real broker), and an HTTP client to it through ASGI."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create(settings_class(), **options)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as client,
    ):
        yield app, client
