"""PostgreSQL adapter for intake: ticket state, processed commands and the outbox (schema `intake`)."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import orjson

from shared.db import migrate
from services.intake.core.tickets import PriorCommand, Status, Ticket
from services.intake.service import OutboxRecord

SCHEMA = "intake"
MIGRATIONS = Path(__file__).parent / "migrations"


def _lock_key(ticket_id: str) -> int:
    return struct.unpack(">q", hashlib.blake2b(ticket_id.encode(), digest_size=8).digest())[0]


class PostgresTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_tickets(self, ticket_ids: Sequence[str]) -> None:
        if not ticket_ids:
            return
        # Sorted, in one statement: two transactions never wait on each other in a cycle.
        keys = sorted({_lock_key(ticket_id) for ticket_id in ticket_ids})
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS sorted", keys)

    async def load(self, ticket_ids: Sequence[str], command_ids: Sequence[str]) -> tuple[dict[str, Ticket], dict[str, PriorCommand]]:
        tickets = {
            row["ticket_id"]: Ticket(row["ticket_id"], row["correlation_id"], row["created_fingerprint"],
                                     Status(row["status"]), row["rated"])
            for row in await self._conn.fetch(
                "SELECT ticket_id, correlation_id, created_fingerprint, status, rated"
                " FROM intake.tickets WHERE ticket_id = ANY($1::text[])", list(ticket_ids))
        }
        priors = {
            row["command_id"]: PriorCommand(row["fingerprint"], row["ticket_id"], row["event_id"], row["event_type"])
            for row in await self._conn.fetch(
                "SELECT command_id, fingerprint, ticket_id, event_id, event_type"
                " FROM intake.commands WHERE command_id = ANY($1::text[])", list(command_ids))
        }
        return tickets, priors

    async def save(self, tickets: Sequence[Ticket], commands: dict[str, PriorCommand], outbox: Sequence[OutboxRecord]) -> None:
        if tickets:
            await self._conn.execute(
                """
                INSERT INTO intake.tickets AS t (ticket_id, correlation_id, created_fingerprint, status, rated)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[])
                ON CONFLICT (ticket_id) DO UPDATE
                SET status = excluded.status, rated = excluded.rated, updated_at = now()
                """,
                [t.ticket_id for t in tickets], [t.correlation_id for t in tickets],
                [t.created_fingerprint for t in tickets], [t.status.value for t in tickets], [t.rated for t in tickets],
            )
        if commands:
            await self._conn.execute(
                "INSERT INTO intake.commands (command_id, fingerprint, ticket_id, event_id, event_type)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])",
                list(commands), [p.fingerprint for p in commands.values()], [p.ticket_id for p in commands.values()],
                [p.event_id for p in commands.values()], [p.event_type for p in commands.values()],
            )
        if outbox:
            await self._conn.execute(
                "INSERT INTO intake.outbox (topic, key, value, headers)"
                " SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[])",
                [r.topic for r in outbox], [r.key for r in outbox], [r.value for r in outbox],
                [encode_headers(r.headers) for r in outbox],
            )


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    """Headers as JSON `[[name, base64 value], ...]`: values may be any bytes (dead letters)."""
    return orjson.dumps([(name, base64.b64encode(value).decode()) for name, value in headers]).decode()


def decode_headers(text: str) -> list[tuple[str, bytes]]:
    return [(name, base64.b64decode(value)) for name, value in orjson.loads(text)]


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def migrate(self) -> list[str]:
        return await migrate(self.pool, SCHEMA, MIGRATIONS)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PostgresTransaction(conn)
