"""PostgreSQL adapter for intake: ticket state, processed commands and the outbox, in the
service's schema (`INTAKE_SCHEMA_NAME`, default `intake`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg

from services.intake.core.tickets import PriorCommand, Status, Ticket
from shared.delivery.locks import client_key
from shared.delivery.outbox import encode_headers
from shared.delivery.records import OutboxRecord
from shared.retention import Rule, kit_rules

MIGRATIONS = Path(__file__).parent / "migrations"


def retention_rules(keep: timedelta) -> list[Rule]:
    """The kit's tables and processed commands: an idempotency key (HTTP) or a topic
    command's id is remembered for `keep` (INTAKE_RETENTION_DAYS), longer than the commands
    topic keeps records. Tickets are kept: a reopen or a rating may come any time."""
    return [*kit_rules(keep), Rule("commands", "processed_at", keep)]


_LOAD = """
SELECT 'ticket' AS kind, ticket_id AS id, correlation_id AS a, created_fingerprint AS b, status AS c, rated AS flag,
       cycle AS n, client AS d
  FROM {schema}.tickets WHERE ticket_id = ANY($1::text[])
UNION ALL
SELECT 'command', command_id, fingerprint, ticket_id, event_id || ' ' || event_type, NULL, NULL, NULL
  FROM {schema}.commands WHERE command_id = ANY($2::text[])
"""

# One statement writes the whole batch (data-modifying CTEs); empty arrays insert nothing.
_SAVE = """
WITH tickets AS (
    INSERT INTO {schema}.tickets (ticket_id, correlation_id, created_fingerprint, status, rated, cycle, client)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $15::integer[], $16::text[])
    ON CONFLICT (ticket_id) DO UPDATE
        SET status = excluded.status, rated = excluded.rated, cycle = excluded.cycle, updated_at = now()
), commands AS (
    INSERT INTO {schema}.commands (command_id, fingerprint, ticket_id, event_id, event_type)
    SELECT * FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
    -- only a redriven dead letter comes back for a remembered id (service.process invariant 4)
    ON CONFLICT (command_id) DO UPDATE SET fingerprint = excluded.fingerprint, ticket_id = excluded.ticket_id,
        event_id = excluded.event_id, event_type = excluded.event_type, processed_at = now()
        WHERE commands.event_type = 'dead_letter'
)
INSERT INTO {schema}.outbox (topic, key, value, headers)
SELECT * FROM unnest($11::text[], $12::bytea[], $13::bytea[], $14::bytea[])
"""


class PostgresTransaction:
    """Four round trips per batch: BEGIN with the locks, one read, one write, COMMIT."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self._conn = conn
        self._load, self._save = _LOAD.format(schema=schema), _SAVE.format(schema=schema)
        self.begun = False

    async def lock(self, ticket_ids: Sequence[str], command_ids: Sequence[str]) -> None:
        # Locks come in their own statement, before the read: in READ COMMITTED a statement
        # reads from a snapshot taken when it starts, i.e. before it waited for a lock.
        # Sorted, in one statement: two transactions never wait on each other in a cycle.
        # The keys are integers computed here (shared.delivery.locks), so inlining them is safe.
        keys = sorted(
            {client_key("intake:ticket", ticket) for ticket in ticket_ids}
            | {client_key("intake:command", command) for command in command_ids}
        )
        listed = ",".join(map(str, keys))
        await self._conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock(k) FROM unnest('{{{listed}}}'::bigint[]) AS k")
        self.begun = True

    async def load(
        self, ticket_ids: Sequence[str], command_ids: Sequence[str]
    ) -> tuple[dict[str, Ticket], dict[str, PriorCommand]]:
        tickets: dict[str, Ticket] = {}
        priors: dict[str, PriorCommand] = {}
        for row in await self._conn.fetch(self._load, list(ticket_ids), list(command_ids)):
            if row["kind"] == "ticket":
                tickets[row["id"]] = Ticket(
                    row["id"], row["a"], row["b"], Status(row["c"]), row["flag"], row["n"], row["d"]
                )
            else:
                event_id, event_type = row["c"].split(" ", 1)
                priors[row["id"]] = PriorCommand(row["a"], row["b"], event_id, event_type)
        return tickets, priors

    async def save(
        self, tickets: Sequence[Ticket], commands: dict[str, PriorCommand], outbox: Sequence[OutboxRecord]
    ) -> None:
        prior = list(commands.values())
        await self._conn.execute(
            self._save,
            [t.ticket_id for t in tickets],
            [t.correlation_id for t in tickets],
            [t.created_fingerprint for t in tickets],
            [t.status.value for t in tickets],
            [t.rated for t in tickets],
            list(commands),
            [p.fingerprint for p in prior],
            [p.ticket_id for p in prior],
            [p.event_id for p in prior],
            [p.event_type for p in prior],
            [r.topic for r in outbox],
            [r.key for r in outbox],
            [r.value for r in outbox],
            [encode_headers(r.headers) for r in outbox],
            [t.cycle for t in tickets],
            [t.client for t in tickets],
        )


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool, self.schema = pool, schema

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """`lock` must come first: it opens the transaction (saving a round trip)."""
        async with self.pool.acquire() as conn:
            tx = PostgresTransaction(conn, self.schema)
            try:
                yield tx
            except BaseException:
                if tx.begun and not conn.is_closed():
                    await conn.execute("ROLLBACK")
                raise
            if not tx.begun:
                raise RuntimeError("transaction used without lock()")
            await conn.execute("COMMIT")
