"""The migration runner on real PostgreSQL: twice is a no-op, concurrent starts don't race."""

import asyncio

import asyncpg
import pytest

from shared.db import MigrationError, create_pool, migrate


@pytest.fixture
async def scratch(platform, unique, tmp_path):
    schema = f"mig_{unique}"
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_second.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    pools = [await create_pool(platform.database_url, min_size=1, max_size=2) for _ in range(2)]
    yield schema, tmp_path, pools
    async with pools[0].acquire() as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    for pool in pools:
        await pool.close()


async def test_applying_twice_is_a_no_op(scratch):
    schema, directory, (pool, _) = scratch
    assert await migrate(pool, schema, directory) == ["0001_first.sql", "0002_second.sql"]
    assert await migrate(pool, schema, directory) == []
    async with pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'things' ORDER BY 1",
            schema,
        )
        assert [c["column_name"] for c in columns] == ["id", "name"]
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == 2


async def test_two_connections_at_once(scratch):
    schema, directory, pools = scratch
    results = await asyncio.gather(*(migrate(pool, schema, directory) for pool in pools for _ in range(3)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == ["0001_first.sql", "0002_second.sql"]  # each exactly once, no error


async def test_a_changed_migration_is_refused(scratch):
    schema, directory, (pool, _) = scratch
    await migrate(pool, schema, directory)
    (directory / "0001_first.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(MigrationError, match=r"0001_first\.sql changed"):
        await migrate(pool, schema, directory)


async def test_a_failing_migration_applies_nothing(scratch):
    schema, directory, (pool, _) = scratch
    (directory / "0003_broken.sql").write_text("ALTER TABLE nowhere ADD COLUMN x int;")
    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(pool, schema, directory)
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema) == 0
        )
