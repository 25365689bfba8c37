"""PostgreSQL adapter for intake: ticket state, processed commands and the outbox, in the
service's schema (`INTAKE_SCHEMA_NAME`, default `intake`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg

from services.intake.core.tickets import PriorCommand, Ticket
from services.intake.service import Parking, Waiting
from shared.delivery.locks import begin_locked
from shared.delivery.outbox import decode_headers, encode_headers
from shared.delivery.records import OutboxRecord, SourceRecord
from shared.lifecycle import Status
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


_WAITING = """
SELECT seq, command_id, ticket_id, first_seen, topic, partition, "offset", timestamp_ms, key, value, headers
  FROM {schema}.waiting WHERE {where} ORDER BY seq
"""
_PARK = """
WITH done AS (DELETE FROM {schema}.waiting WHERE seq = ANY($1::bigint[]))
INSERT INTO {schema}.waiting
    (command_id, ticket_id, first_seen, topic, partition, "offset", timestamp_ms, key, value, headers)
SELECT * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::integer[], $7::bigint[],
                     $8::bigint[], $9::bytea[], $10::bytea[], $11::bytea[])
ON CONFLICT (command_id) DO NOTHING
"""


def _waiting(row: asyncpg.Record) -> Waiting:
    source = SourceRecord(
        row["topic"],
        row["partition"],
        row["offset"],
        row["timestamp_ms"],
        row["key"],
        row["value"],
        decode_headers(row["headers"]),
    )
    return Waiting(row["command_id"], row["ticket_id"], row["first_seen"], source, row["seq"])


async def waiting_commands(pool: asyncpg.Pool, schema: str, limit: int) -> list[Waiting]:
    """The oldest waiting commands, in arrival order (the retry step reads them again)."""
    sql = _WAITING.format(schema=schema, where="true") + " LIMIT $1"
    return [_waiting(row) for row in await pool.fetch(sql, limit)]


class PostgresTransaction:
    """Four round trips per batch: BEGIN with the locks, one read, one write, COMMIT."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self._conn = conn
        self._load, self._save = _LOAD.format(schema=schema), _SAVE.format(schema=schema)
        self._waiting_sql = _WAITING.format(schema=schema, where="ticket_id = ANY($1::text[])")
        self._park = _PARK.format(schema=schema)
        self.begun = False

    async def lock(self, ticket_ids: Sequence[str], command_ids: Sequence[str]) -> None:
        """Opens the transaction with its locks, before any read (shared.delivery.locks)."""
        await begin_locked(self._conn, {"intake:ticket": ticket_ids, "intake:command": command_ids})
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

    async def waiting(self, ticket_ids: Sequence[str]) -> list[Waiting]:
        sql = self._waiting_sql
        return [_waiting(row) for row in await self._conn.fetch(sql, list(ticket_ids))]

    async def save(
        self,
        tickets: Sequence[Ticket],
        commands: dict[str, PriorCommand],
        outbox: Sequence[OutboxRecord],
        parking: Parking | None = None,
    ) -> None:
        if parking is not None and (parking.add or parking.done):
            add = parking.add
            await self._conn.execute(
                self._park,
                parking.done,
                [w.command_id for w in add],
                [w.ticket_id for w in add],
                [w.first_seen for w in add],
                [w.source.topic for w in add],
                [w.source.partition for w in add],
                [w.source.offset for w in add],
                [w.source.timestamp_ms for w in add],
                [w.source.key for w in add],
                [w.source.value for w in add],
                [encode_headers(w.source.headers) for w in add],
            )
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
