"""Per-ticket rows that every event updates leave room on their pages, so updates stay HOT
(a new version on the same page, no new index entry): the kit's `lifecycle`, escalation's
and intake's `tickets` (migrations `0005_hot_updates.sql` and the services' own)."""

from pathlib import Path

import asyncpg
import pytest

from services.escalation.adapters.store import MIGRATIONS as ESCALATION
from services.intake.adapters.store import MIGRATIONS as INTAKE
from shared.db import drop_schemas
from shared.service import migrate

TICKETS = 3000  # dozens of full pages


@pytest.mark.parametrize(
    ("migrations", "table", "insert", "update"),
    [
        (
            None,
            "lifecycle",
            "INSERT INTO {t} (ticket_id, status, rated, cycle) "
            "SELECT 't' || i, 'open', false, 1 FROM generate_series(1, $1) i",
            "UPDATE {t} SET status = 'resolved'",
        ),
        (
            ESCALATION,
            "tickets",
            "INSERT INTO {t} (ticket_id, correlation_id, priority, intent, customer_blocked, owner) "
            "SELECT 't' || i, 'c' || i, 'P3', 'login', false, 'L1' FROM generate_series(1, $1) i",
            "UPDATE {t} SET owner = 'L2', communication_owner = 'L1'",
        ),
        (
            INTAKE,
            "tickets",
            "INSERT INTO {t} (ticket_id, correlation_id, created_fingerprint, status, client) "
            "SELECT 't' || i, 'c' || i, 'f', 'open', 'helpdesk' FROM generate_series(1, $1) i",
            "UPDATE {t} SET status = 'resolved', cycle = 2, updated_at = now()",
        ),
    ],
    ids=["kit lifecycle", "escalation tickets", "intake tickets"],
)
async def test_a_ticket_update_soon_after_its_insert_stays_on_its_page(
    platform, unique, migrations: Path | None, table: str, insert: str, update: str
):
    schema = f"hot_{unique}"
    pool = await asyncpg.create_pool(platform.database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, schema, migrations)
        qualified = f"{schema}.{table}"
        async with pool.acquire() as conn:
            await conn.execute(insert.format(t=qualified), TICKETS)
            async with conn.transaction():
                # Every ticket's first update, in one transaction: nothing can be pruned yet,
                # so only the room the pages were left with takes HOT versions.
                await conn.execute(update.format(t=qualified))
                updated, hot = await conn.fetchrow(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                    "WHERE schemaname = $1 AND relname = $2",
                    schema,
                    table,
                )
        assert updated == TICKETS
        # fillfactor 70 leaves room for about 40% of a page's rows; full pages for ~none.
        assert hot >= 0.3 * TICKETS, f"{hot} of {updated} updates were HOT"
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)
