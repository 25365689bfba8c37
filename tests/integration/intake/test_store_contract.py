"""The intake store contract against PostgreSQL (schema `intake`, migrated)."""

import pytest

from shared.db import create_pool
from services.intake.adapters.store import PostgresStore, decode_headers
from services.intake.service import OutboxRecord
from tests.contract.intake_store import IntakeStoreContract


class Probe:
    """Ids get a per-test prefix, and the outbox is read back only for them: the database
    is shared with other tests (and no relay runs while these do)."""

    def __init__(self, store, prefix):
        self.store, self.prefix = store, prefix
        self.seq = 0

    def id(self, name):
        return f"{self.prefix}-{name}"

    async def outbox(self):
        rows = await self.store.pool.fetch(
            "SELECT topic, key, value, headers FROM intake.outbox WHERE seq > $1 ORDER BY seq", self.seq)
        return [OutboxRecord(r["topic"], r["key"], r["value"], decode_headers(r["headers"])) for r in rows]

    async def remembered(self, command):
        from services.intake.core.tickets import PriorCommand

        row = await self.store.pool.fetchrow(
            "SELECT fingerprint, ticket_id, event_id, event_type FROM intake.commands WHERE command_id = $1",
            self.id(command))
        return PriorCommand(*row) if row else None


@pytest.fixture
async def probe(platform, unique):
    pool = await create_pool(platform.database_url)
    store = PostgresStore(pool)
    await store.migrate()
    probe = Probe(store, unique)
    probe.seq = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM intake.outbox")
    yield probe
    # These records were for inspection only: don't let a later relay publish them.
    await pool.execute("DELETE FROM intake.outbox WHERE seq > $1", probe.seq)
    await pool.close()


class TestPostgresStore(IntakeStoreContract):
    pass


async def test_outbox_rows_written_before_0002_keep_their_headers(platform, unique, tmp_path):
    """Migration 0002 turns the array header columns into the JSON form the relay reads,
    binary and long (base64-wrapped) values included."""
    import shutil

    from shared.db import migrate
    from services.intake.adapters.store import MIGRATIONS

    schema = f"outbox_{unique}"
    shutil.copy(MIGRATIONS / "0001_intake.sql", tmp_path)
    pool = await create_pool(platform.database_url)
    try:
        await migrate(pool, schema, tmp_path)
        long_value = b"x" * 100
        await pool.execute(
            f'INSERT INTO "{schema}".outbox (topic, key, value, header_names, header_values)'
            " VALUES ('t', NULL, 'v', $1, $2)", ["bin", "long"], [b"\x00\xff", long_value])
        shutil.copy(MIGRATIONS / "0002_outbox_headers_json.sql", tmp_path)
        assert await migrate(pool, schema, tmp_path) == ["0002_outbox_headers_json.sql"]
        stored = await pool.fetchval(f'SELECT headers FROM "{schema}".outbox')
        assert decode_headers(stored) == [("bin", b"\x00\xff"), ("long", long_value)]
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
