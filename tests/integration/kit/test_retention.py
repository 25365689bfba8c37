"""Retention of the kit's tables on real PostgreSQL (shared/retention.py): old dedup rows
and quarantined records go in small batches, recent ones and per-ticket state stay, and
dedup of what is kept still works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.db import create_pool, drop_schemas
from shared.delivery.inbox import claim
from shared.retention import kit_rules, prune
from shared.service import migrate

KEEP = timedelta(days=30)


@pytest.fixture
async def kit(platform, unique):
    schema = f"kit_retention_{unique}"
    pool = await create_pool(platform.database_url, max_size=4)
    await migrate(pool, schema, None)
    yield schema, pool
    await pool.close()
    await drop_schemas(platform.database_url, schema)


async def test_old_dedup_rows_go_recent_ones_and_lifecycles_stay(kit):
    schema, pool = kit
    now = datetime.now(UTC)
    old, recent = [(f"old-{i}", f"e/0/{i}@1") for i in range(120)], [(f"new-{i}", f"e/1/{i}@1") for i in range(30)]
    async with pool.acquire() as conn, conn.transaction():
        await claim(conn, schema, old + recent)
        await claim(conn, schema, [("old-0", "e/2/0@1"), ("new-0", "e/2/1@1")])  # two duplicates
        await conn.execute(
            f"UPDATE {schema}.inbox SET claimed_at = $1 WHERE event_id LIKE 'old-%'", now - KEEP - timedelta(hours=1)
        )
        await conn.execute(
            f"UPDATE {schema}.inbox_duplicates SET seen_at = $1 WHERE event_id = 'old-0'", now - timedelta(days=31)
        )
        await conn.execute(
            f"INSERT INTO {schema}.outbox_quarantine (seq, topic, key, value, headers, created_at, quarantined_at, "
            "reason) VALUES (1, 't', null, null, '', $1, $1, 'old'), (2, 't', null, null, '', $2, $2, 'new')",
            now - timedelta(days=40),
            now - timedelta(days=1),
        )
        await conn.execute(
            f"INSERT INTO {schema}.lifecycle VALUES ('resolved-long-ago', 'resolved', true), ('open', 'open', false)"
        )

    removed = await prune(pool, schema, kit_rules(KEEP), now, batch=7)  # many small batches

    assert removed == {"inbox": 120, "inbox_duplicates": 1, "outbox_quarantine": 1}
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.inbox") == 30
    assert await pool.fetchval(f"SELECT event_id FROM {schema}.inbox_duplicates") == "new-0"
    assert await pool.fetchval(f"SELECT reason FROM {schema}.outbox_quarantine") == "new"
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.lifecycle") == 2
    async with pool.acquire() as conn, conn.transaction():
        again = await claim(conn, schema, recent)  # a redelivery of what is kept: still nothing
    assert not again.fresh and again.redelivered == 30
    assert await prune(pool, schema, kit_rules(KEEP), now) == {
        "inbox": 0,
        "inbox_duplicates": 0,
        "outbox_quarantine": 0,
    }
