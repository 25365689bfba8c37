"""A connected help desk is a client like any other: over its token bucket it gets 429 with
Retry-After, before anything is parsed or submitted, and its bucket is its own."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.intake.core.helpdesks.mapping import Connection, parse_mapping
from services.intake.core.limits import RateLimits
from services.intake.handlers.webhooks import webhook_router

MAPPING = (Path(__file__).resolve().parents[3] / "deploy" / "helpdesks" / "freshdesk.yaml").read_text()


async def test_a_connection_over_its_rate_limit_gets_429_and_nothing_is_submitted():
    submitted = []

    async def submit(entry):
        submitted.append(entry)
        raise ConnectionError("storage down")  # what happens after the limit is not this test's business

    limited = parse_mapping(MAPPING + "rate_per_second: 0.001\nburst: 2\n")
    connections = {
        "desk": Connection(name="desk", mapping=limited, secret="s3cret"),
        "other": Connection(name="other", mapping=limited, secret="s3cret"),
    }
    app = FastAPI()
    app.include_router(webhook_router(connections, submit, RateLimits(1000, 2000), clock=lambda: 100.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        headers = {"X-Ladder-Webhook-Secret": "s3cret", "Content-Type": "application/json"}
        answers = [await client.post("/v1/webhooks/freshdesk/desk", headers=headers, content=b"{}") for _ in range(4)]
        wrong = await client.post(
            "/v1/webhooks/freshdesk/desk", headers={**headers, "X-Ladder-Webhook-Secret": "no"}, content=b"{}"
        )
        others = await client.post("/v1/webhooks/freshdesk/other", headers=headers, content=b"{}")
    assert [a.status_code for a in answers[2:]] == [429, 429]
    assert [a.status_code for a in answers[:2]] == [503, 503]  # the burst reached the command path
    assert answers[2].json()["error"] == "rate_limited" and int(answers[2].headers["Retry-After"]) >= 1
    assert wrong.status_code == 401  # an unauthenticated delivery takes no token: it is refused first
    assert others.status_code == 503  # each connection has its own bucket
    assert len(submitted) == 3  # neither the 429s nor the 401 reached the command path
