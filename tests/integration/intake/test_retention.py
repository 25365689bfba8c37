"""intake forgets processed commands (idempotency keys) after INTAKE_RETENTION_DAYS, on its
own schedule; a key inside the retention still replays."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from tests.apps import in_process
from tests.integration.intake.conftest import HELPDESK, intake_env_at_tail, ticket_body


async def test_old_idempotency_keys_are_pruned_recent_ones_replay(platform, unique):
    env = await intake_env_at_tail(
        platform.kafka_bootstrap_servers, INTAKE_RETENTION_DAYS="10", INTAKE_PRUNE_INTERVAL_S="1"
    )
    schema = env["INTAKE_SCHEMA_NAME"]
    async with in_process(create_app, IntakeSettings, env) as (_, client):
        old = await client.post(
            "/v1/tickets", json=ticket_body(f"old-{unique}"), headers={**HELPDESK, "Idempotency-Key": f"o-{unique}"}
        )
        new = await client.post(
            "/v1/tickets", json=ticket_body(f"new-{unique}"), headers={**HELPDESK, "Idempotency-Key": f"n-{unique}"}
        )
        assert old.status_code == new.status_code == 201
        conn = await asyncpg.connect(platform.database_url)
        try:
            await conn.execute(
                f"UPDATE {schema}.commands SET processed_at = now() - interval '11 days' WHERE ticket_id = $1",
                old.json()["ticket_id"],
            )
            deadline = time.monotonic() + 20
            while await conn.fetchval(f"SELECT count(*) FROM {schema}.commands") != 1:
                assert time.monotonic() < deadline, "the old key was not pruned"
                await asyncio.sleep(0.2)
            assert await conn.fetchval(f"SELECT ticket_id FROM {schema}.commands") == new.json()["ticket_id"]
        finally:
            await conn.close()
        again = await client.post(
            "/v1/tickets", json=ticket_body(f"new-{unique}"), headers={**HELPDESK, "Idempotency-Key": f"n-{unique}"}
        )
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == new.json()
        metrics = (await client.get("/metrics")).text
        assert 'support_retention_rows_removed_total{table="commands"} 1.0' in metrics
