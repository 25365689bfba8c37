"""The store contract (tests/unit/router/store_contract.py) on PostgreSQL, in a private schema."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from services.router.adapters.store import MIGRATIONS, RouterStore, sync_roster
from shared.db import create_pool, drop_schemas
from shared.service import migrate
from tests.unit.router.store_contract import StoreContract


class PostgresEnv:
    def __init__(self, pool, schema: str) -> None:
        self.pool, self.schema = pool, schema

    @asynccontextmanager
    async def transaction(self):
        async with self.pool.acquire() as conn, conn.transaction():
            yield RouterStore(conn, self.schema)

    async def sync_roster(self, charter) -> None:
        await sync_roster(self.pool, self.schema, charter)


@pytest.fixture
async def env(platform, unique):
    schema = f"router_{unique}"
    pool = await create_pool(platform.database_url, max_size=2)
    try:
        await migrate(pool, schema, MIGRATIONS)
        yield PostgresEnv(pool, schema)
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)


class TestPostgresStore(StoreContract):
    pass
