"""The intake store contract against PostgreSQL (a private schema, migrated)."""

import pytest

from services.intake.adapters.store import MIGRATIONS, PostgresStore
from shared.db import create_pool
from shared.delivery.outbox import decode_headers
from shared.delivery.records import OutboxRecord
from shared.service import migrate
from tests.contract.intake_store import IntakeStoreContract


class Probe:
    """Each test has its own schema, so the outbox holds only what it staged (and no relay
    ever reads it)."""

    def __init__(self, store, prefix):
        self.store, self.prefix = store, prefix

    def id(self, name):
        return f"{self.prefix}-{name}"

    async def outbox(self):
        rows = await self.store.pool.fetch(
            f"SELECT topic, key, value, headers FROM {self.store.schema}.outbox ORDER BY seq"
        )
        return [OutboxRecord(r["topic"], r["key"], r["value"], decode_headers(r["headers"])) for r in rows]

    async def remembered(self, command):
        from services.intake.core.tickets import PriorCommand

        row = await self.store.pool.fetchrow(
            f"SELECT fingerprint, ticket_id, event_id, event_type FROM {self.store.schema}.commands "
            "WHERE command_id = $1",
            self.id(command),
        )
        return PriorCommand(*row) if row else None


@pytest.fixture
async def probe(platform, unique):
    pool = await create_pool(platform.database_url)
    store = PostgresStore(pool, f"intake_store_{unique.replace('-', '_')}")
    await migrate(pool, store.schema, MIGRATIONS)
    yield Probe(store, unique)
    await pool.execute(f"DROP SCHEMA {store.schema} CASCADE")
    await pool.close()


class TestPostgresStore(IntakeStoreContract):
    pass


async def test_outbox_rows_from_every_earlier_layout_keep_their_headers(platform, unique, tmp_path):
    """Rows staged under 0001 (header arrays) and 0002 (JSON) are still published with
    their headers after 0003 (the kit's byte encoding): binary, long and NUL values included;
    and the migrated table is the kit's outbox, column for column."""
    import shutil

    from shared.db import migrate as migrate_files

    schema = f"outbox_{unique}"
    fresh = f"kit_{unique}"
    long_value = b"x" * 100
    pool = await create_pool(platform.database_url)
    try:
        shutil.copy(MIGRATIONS / "0001_intake.sql", tmp_path)
        await migrate_files(pool, schema, tmp_path)
        await pool.execute(
            f'INSERT INTO "{schema}".outbox (topic, key, value, header_names, header_values)'
            " VALUES ('t', NULL, 'v', $1, $2)",
            ["bin", "long"],
            [b"\x00\xff", long_value],
        )
        shutil.copy(MIGRATIONS / "0002_outbox_headers_json.sql", tmp_path)
        assert await migrate_files(pool, schema, tmp_path) == ["0002_outbox_headers_json.sql"]
        await pool.execute(
            f'INSERT INTO "{schema}".outbox (topic, key, value, headers)'
            """ VALUES ('t', 'k', 'w', '[["é", "AP8="], ["empty", ""]]')"""
        )
        applied = await migrate(pool, schema, MIGRATIONS)  # then later ones, intake's and the kit's
        assert applied[0] == "0003_delivery_kit_outbox.sql" and "0001_delivery.sql" in applied
        stored = [
            decode_headers(row["headers"])
            for row in await pool.fetch(f'SELECT headers FROM "{schema}".outbox ORDER BY seq')
        ]
        assert stored == [[("bin", b"\x00\xff"), ("long", long_value)], [("é", b"\x00\xff"), ("empty", b"")]]

        await migrate(pool, fresh, None)  # the kit's tables alone
        shape = (
            "SELECT column_name, data_type, is_nullable, column_default IS NOT NULL FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'outbox' ORDER BY column_name"
        )
        migrated, kit = await pool.fetch(shape, schema), await pool.fetch(shape, fresh)
        assert [tuple(r) for r in migrated] == [tuple(r) for r in kit]
    finally:
        for name in (schema, fresh):
            await pool.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await pool.close()
