"""PostgreSQL: the connection pool and the versioned migration runner.

Migration invariants:
1. Each service owns one schema; its migrations are files `NNNN_name.sql`, applied in order.
2. Applying twice is a no-op; an already-applied file whose content changed is an error.
3. A service role needs only to own its schema, not to create schemas.
4. Concurrent starts don't race: the runner holds a transaction-scoped advisory lock per schema,
   and all pending files apply in that one transaction (DDL is transactional in PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from shared.delivery.locks import internal_key
from shared.settings import StartupError, redact_url


class MigrationError(RuntimeError):
    pass


async def create_pool(
    database_url: str, *, min_size: int = 2, max_size: int = 10, timeout: float = 10.0
) -> asyncpg.Pool:
    """A pool, or `StartupError` naming DATABASE_URL when the server can't be reached."""
    try:
        return await asyncio.wait_for(
            asyncpg.create_pool(
                database_url,
                min_size=min_size,
                max_size=max_size,
                command_timeout=30,
                reset=_nothing_to_reset,
                **connect_options(database_url),
            ),
            timeout,
        )
    except (TimeoutError, OSError, asyncpg.PostgresError, ValueError) as error:
        reason = str(error) or type(error).__name__
        raise StartupError(f"DATABASE_URL={redact_url(database_url)}: PostgreSQL unreachable ({reason})") from None


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """A released connection is only rolled back (asyncpg does that before this runs), not
    reset: pooled connections keep no session state (locks and `SET LOCAL` end with their
    transaction; the relay's leader lock and escalation's LISTEN have connections of their
    own). asyncpg's default reset is one more round trip per transaction (advisory unlock,
    CLOSE ALL, UNLISTEN, RESET ALL): 26,214 of them in one bench run, one per commit."""


# Every statement is planned with its parameters. asyncpg prepares each statement once per
# connection, and after five runs PostgreSQL may keep a generic plan made while a table was
# tiny: a sequential scan whose `ticket_id = ANY($1)` compares every row with every id. Once
# the table has grown (a fresh deployment, a replay) that plan stays until the next ANALYZE:
# measured, 2,000 ids against 44,000 rows took 1,224 ms instead of 5 ms, and escalation's
# batches took seconds in one bench run. A custom plan sees the ids (and hashes them).
PLANNING = {"plan_cache_mode": "force_custom_plan"}


def connect_options(database_url: str) -> dict[str, object]:
    """Connection settings for every service connection: plans per execution (`PLANNING`);
    TLS as the URL says (`sslmode=...`), except on loopback, where it is pointless and costs
    a third of a small query's CPU."""
    parts = urlsplit(database_url)
    options: dict[str, object] = {"server_settings": PLANNING}
    if "sslmode=" not in parts.query and parts.hostname in {"localhost", "127.0.0.1", "::1"}:
        options["ssl"] = False
    return options


def schema_name(identifier: str) -> str:
    """A schema name safe to put in SQL (services name their own schema; never client data)."""
    if not identifier or not identifier.replace("_", "").isalnum() or not identifier.isascii():
        raise ValueError(f"bad schema name {identifier!r}")
    return identifier


async def drop_schemas(database_url: str, *schemas: str) -> None:
    """Drop `schemas` and all in them (the demo's reset, tests and benches clean up with it)."""
    conn = await asyncpg.connect(database_url, **connect_options(database_url))
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema_name(schema)}" CASCADE')
    finally:
        await conn.close()


async def migrate(pool: asyncpg.Pool, schema: str, directory: Path, *, ledger: str = "schema_migrations") -> list[str]:
    """Apply pending migrations of `schema` from `directory`, recorded in table `ledger`
    (the delivery kit keeps its own); returns the names applied now."""
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))  # noqa: ASYNC240 - a few small files, once at start-up
    name, ledger = schema_name(schema), schema_name(ledger)
    applied_now: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *internal_key(f"migrate:{schema}"))
        # A service role owns its schema (deploy/local/postgres.sh creates it) and may not
        # create schemas: `CREATE SCHEMA IF NOT EXISTS` checks that right even when it exists.
        if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", name):
            await conn.execute(f'CREATE SCHEMA "{name}"')
        await conn.execute(f'SET LOCAL search_path TO "{name}", public')
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {ledger} ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            row["version"]: row["checksum"] for row in await conn.fetch(f"SELECT version, checksum FROM {ledger}")
        }
        for path in files:
            version = int(path.name[:4])
            sql = path.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if version in applied:
                if applied[version] != checksum:
                    raise MigrationError(f"{schema} migration {path.name} changed after it was applied")
                continue
            await conn.execute(sql)
            await conn.execute(
                f"INSERT INTO {ledger} (version, name, checksum) VALUES ($1, $2, $3)",
                version,
                path.name,
                checksum,
            )
            applied_now.append(path.name)
    return applied_now


async def lock_table_size(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    """How many locks the server's shared lock table holds, for every session together."""
    return int(
        await conn.fetchval(
            "SELECT current_setting('max_locks_per_transaction')::int * (current_setting('max_connections')::int "
            "+ current_setting('max_prepared_transactions')::int)"
        )
    )


async def collation(conn: asyncpg.Pool | asyncpg.Connection) -> str:
    """How the database compares text, in every index: `C` is byte by byte, anything else a locale."""
    return str(await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = current_database()"))


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            async with pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
