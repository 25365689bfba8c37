"""Limits: a client over its rate limit gets 429 with Retry-After and nothing is applied; a
full HTTP queue answers 503 with Retry-After. Both are in the OpenAPI document."""

import asyncio
import json

from cli.contracts import openapi as document
from services.intake.core.auth import hash_key
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from tests.apps import in_process
from tests.integration.intake.conftest import HELPDESK, KEY_CONFIG, intake_env, ticket_body

SLOW = "it-slow-key"
KEYS_WITH_A_SLOW_CLIENT = json.dumps(
    {
        "keys": [
            *json.loads(KEY_CONFIG)["keys"],
            # three at once, then one every 1000 s: nothing refills during the test
            {"name": "slow", "sha256": hash_key(SLOW), "actions": ["create"], "rate_per_second": 0.001, "burst": 3},
        ]
    }
)


async def test_a_burst_over_the_rate_limit_gets_429s_and_nothing_else(platform, events, unique):
    env = intake_env(INTAKE_API_KEYS=KEYS_WITH_A_SLOW_CLIENT)
    async with in_process(create_app, IntakeSettings, env) as (_, client):
        headers = {"Authorization": f"Bearer {SLOW}"}
        answers = await asyncio.gather(
            *(client.post("/v1/tickets", json=ticket_body(f"{unique}-{i}"), headers=headers) for i in range(12))
        )
        assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 9
        for refused in (a for a in answers if a.status_code == 429):
            assert refused.json()["error"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
        other = await client.post("/v1/tickets", json=ticket_body(f"{unique}-other"), headers=HELPDESK)
        assert other.status_code == 201  # the limit is the slow client's own
        created = {a.json()["ticket_id"] for a in answers if a.status_code == 201}
        await events.wait_for(lambda rs: created <= {r.key.decode() for r in rs})
        await events.settle(1.0)
        mine = [r for r in events.records if f"cust-{unique}-".encode() in r.value and b"other" not in r.value]
        assert len(mine) == 3  # nothing refused reached the stream


async def test_a_full_http_queue_answers_503_with_retry_after(platform, unique):
    env = intake_env(INTAKE_HTTP_QUEUE="1", INTAKE_HTTP_BATCH="1")
    async with in_process(create_app, IntakeSettings, env) as (_, client):
        answers = await asyncio.gather(
            *(client.post("/v1/tickets", json=ticket_body(f"{unique}-{i}"), headers=HELPDESK) for i in range(60))
        )
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {201, 503}, statuses
    for refused in (a for a in answers if a.status_code == 503):
        assert refused.json()["error"] == "overloaded" and refused.headers["Retry-After"] == "1"


def test_the_limits_are_in_the_openapi_document():
    responses = document()["paths"]["/v1/tickets"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
