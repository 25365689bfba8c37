"""Systemic faults outside the consumers: router's assignment pass, metrics' KPI refresh and
intake's HTTP path, made to fail by a revoked privilege on the real database, answer
`/readyz` 503 naming the part and the cause, then recover by themselves once the privilege
is back."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from services.intake.main import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.metrics.main import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from services.router.main import create_app as create_router
from services.router.settings import RouterSettings
from shared.db import drop_schemas
from tests.apps import in_process
from tests.integration.intake.conftest import HELPDESK, intake_env_at_tail, ticket_body
from tests.integration.router.conftest import Clock, router_env
from tests.kafka_tools import private_topics


async def readiness(client, want: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while (response := await client.get("/readyz")).status_code != want:
        assert time.monotonic() < deadline, response.json()
        await asyncio.sleep(0.2)
    return response.json()


async def revoke_then_grant(database_url: str, table: str, client, loop: str) -> dict:
    conn = await asyncpg.connect(database_url)
    try:
        await readiness(client, 200)
        await conn.execute(f"REVOKE SELECT ON {table} FROM CURRENT_USER")
        body = await readiness(client, 503)
        stalled = (await client.get("/metrics")).text
        await conn.execute(f"GRANT SELECT ON {table} TO CURRENT_USER")
        await readiness(client, 200)
    finally:
        await conn.close()
    assert body["checks"][loop] is False
    assert f'support_stalled{{part="loop {loop}"}} 1.0' in stalled
    return body


async def test_a_failing_assignment_pass_is_reported_and_recovers(platform):
    schema = f"router_{uuid.uuid4().hex[:10]}"
    try:
        async with (
            private_topics(platform.kafka_bootstrap_servers) as (prefix, _),
            in_process(create_router, RouterSettings, router_env(prefix, schema), clock=Clock(datetime.now(UTC))) as (
                _,
                client,
            ),
        ):
            body = await revoke_then_grant(platform.database_url, f"{schema}.tickets", client, "assignment")
    finally:
        await drop_schemas(platform.database_url, schema)
    assert body["causes"]["assignment"] == "systemic: InsufficientPrivilegeError (42501)"


async def test_a_failing_kpi_refresh_is_reported_and_recovers(platform):
    schema = f"metrics_{uuid.uuid4().hex[:10]}"
    try:
        async with private_topics(platform.kafka_bootstrap_servers) as (prefix, _):
            env = {
                "LADDER_TOPIC_PREFIX": prefix,
                "METRICS_SCHEMA_NAME": schema,
                "METRICS_CONSUMER_GROUP": f"{prefix}g",
                "METRICS_REFRESH_INTERVAL_S": "0.3",
            }
            async with in_process(create_metrics, MetricsSettings, env) as (_, client):
                body = await revoke_then_grant(platform.database_url, f"{schema}.total", client, "kpis")
    finally:
        await drop_schemas(platform.database_url, schema)
    assert body["causes"]["kpis"] == "systemic: InsufficientPrivilegeError (42501)"


async def test_a_systemic_fault_on_the_http_path_is_503_with_retry_after_and_heals(platform, unique, caplog):
    """Revoked INSERT on intake's commands table: every request is answered 503 with
    Retry-After (nothing applied, retry with the same Idempotency-Key), readiness names the
    cause, the log has a line per backoff step rather than per request; then it heals."""
    env = await intake_env_at_tail(platform.kafka_bootstrap_servers)
    schema = env["INTAKE_SCHEMA_NAME"]
    async with in_process(create_intake, IntakeSettings, env) as (_, client):
        conn = await asyncpg.connect(platform.database_url)
        try:
            await conn.execute(f"REVOKE INSERT ON {schema}.commands FROM CURRENT_USER")
            caplog.set_level(logging.WARNING)
            caplog.clear()
            refused = [
                await client.post(
                    "/v1/tickets", headers={**HELPDESK, "Idempotency-Key": f"k-{i}"}, json=ticket_body(unique)
                )
                for i in range(40)
            ]
            body = await readiness(client, 503)
            lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
            await conn.execute(f"GRANT INSERT ON {schema}.commands TO CURRENT_USER")
            retried = await client.post(
                "/v1/tickets", headers={**HELPDESK, "Idempotency-Key": "k-0"}, json=ticket_body(unique)
            )
            await readiness(client, 200)
        finally:
            await conn.close()
    assert {r.status_code for r in refused} == {503}
    assert all(r.headers["Retry-After"] for r in refused)
    assert body["causes"]["http_commands"] == "systemic: InsufficientPrivilegeError (42501)"
    assert 1 <= len(lines) <= 5, [r.getMessage() for r in lines]
    assert retried.status_code == 201
