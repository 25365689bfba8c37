"""Service connections between transactions (shared/db.py `create_pool`), and the batch
transaction that holds its tickets' locks (shared/delivery/locks.py `tickets_locked`).

A released connection is rolled back but not reset: pooled connections keep no session
state, and asyncpg's reset query was one more round trip per transaction."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db import connect_options, create_pool, drop_schemas
from shared.delivery.locks import client_key, tickets_locked


@pytest.fixture
async def pool(platform, unique):
    schema = f"kit_{unique}"
    pool = await create_pool(platform.database_url, min_size=1, max_size=1)  # one connection: the same one again
    await pool.execute(f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.done (ticket_id text PRIMARY KEY)")
    try:
        yield pool, schema
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)


async def test_a_released_connection_is_rolled_back_but_not_reset(pool):
    pool, schema = pool
    async with pool.acquire() as conn:
        await conn.execute("SET application_name TO 'ladder-kept'")  # session state: no reset query ran
        await conn.execute(f"BEGIN; INSERT INTO {schema}.done VALUES ('t1')")  # left open
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") == "ladder-kept"
        assert not conn.is_in_transaction()
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.done") == 0


async def test_a_batch_transaction_commits_or_rolls_back_and_frees_its_locks(pool, platform):
    pool, schema = pool
    other = await asyncpg.connect(platform.database_url, **connect_options(platform.database_url))  # another replica

    async def free(ticket: str) -> bool:
        return bool(
            await other.fetchval("SELECT pg_try_advisory_xact_lock($1)", client_key(f"{schema}:ticket", ticket))
        )

    try:
        async with pool.acquire() as conn:
            async with tickets_locked(conn, schema, ["t1", "t2"]):
                await conn.execute(f"INSERT INTO {schema}.done VALUES ('t1')")
                assert not await free("t1") and not await free("t2")
            assert await free("t1") and await free("t2")
            with pytest.raises(ZeroDivisionError):
                async with tickets_locked(conn, schema, ["t2"]):
                    await conn.execute(f"INSERT INTO {schema}.done VALUES ('t2')")
                    raise ZeroDivisionError  # the batch failed
            assert not conn.is_in_transaction() and await free("t2")
            assert [row[0] for row in await conn.fetch(f"SELECT ticket_id FROM {schema}.done")] == ["t1"]
    finally:
        await other.close()
