"""Service connections plan every statement with its parameters (shared/db.py `PLANNING`).

A generic plan made while a table was tiny is a sequential scan comparing every row with
every id of `= ANY($1)`; it survives the table's growth until the next ANALYZE, and one bench
run's escalation batches took seconds instead of milliseconds that way."""

from __future__ import annotations

from shared.db import create_pool, drop_schemas

LOOKUP = "SELECT ticket_id FROM {schema}.lifecycle WHERE ticket_id = ANY($1::text[])"


async def test_a_statement_planned_on_a_tiny_table_is_planned_again_once_it_grew(platform, unique):
    schema = f"kit_{unique}"
    pool = await create_pool(platform.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.lifecycle (ticket_id text PRIMARY KEY); "
                f"INSERT INTO {schema}.lifecycle SELECT 't' || i FROM generate_series(1, 100) i; "
                f"ANALYZE {schema}.lifecycle"
            )
            lookup = LOOKUP.format(schema=schema)
            for _ in range(10):  # PostgreSQL weighs a generic plan from the sixth run on
                assert len(await conn.fetch(lookup, ["t1", "t2"])) == 2
            await conn.execute(f"INSERT INTO {schema}.lifecycle SELECT 't' || i FROM generate_series(101, 20000) i")
            ids = [f"t{i}" for i in range(10_000, 12_000)]
            assert len(await conn.fetch(lookup, ids)) == len(ids)
            plans = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", lookup
            )
        assert plans is not None, "asyncpg prepares the statement once per connection"
        assert (plans["generic_plans"], plans["custom_plans"]) == (0, 11)
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)
