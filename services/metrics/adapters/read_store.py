"""PostgreSQL adapter of the read model (migrations/0002_read_model.sql): written in the
kit's transaction with the KPI projection, read by the read API and the ladder page."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.metrics.core.read_model import TicketNow, fold, stored_body
from shared.envelope import Envelope

# ticket_now's columns and their types, in TicketNow's field order.
_TYPED = (
    ("ticket_id", "text"), ("priority", "text"), ("intent", "text"), ("customer_blocked", "boolean"),
    ("status", "text"), ("tier", "text"), ("queue", "text"), ("assignee", "text"),
    ("communication_owner", "text"), ("queued_at", "timestamptz"), ("visit_start", "timestamptz"),
    ("created_at", "timestamptz"), ("client", "text"),
)  # fmt: skip
_COLUMNS = [column for column, _ in _TYPED]
_NOW = ", ".join(_COLUMNS)


class ReadStore:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(_TYPED, start=1))
        self._upsert = (
            f"INSERT INTO {schema}.ticket_now ({_NOW}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (ticket_id) DO UPDATE SET status = excluded.status, tier = excluded.tier, "
            "queue = excluded.queue, assignee = excluded.assignee, "
            "communication_owner = excluded.communication_owner, queued_at = excluded.queued_at, "
            "visit_start = excluded.visit_start"
        )

    async def save(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if not events:
            return
        s = self.schema
        await conn.copy_records_to_table(
            "ticket_event",
            schema_name=s,
            columns=("ticket_id", "event_id", "type", "source", "at", "cycle", "causation_id", "body"),
            records=[
                (
                    e.ticket_id,
                    e.id,
                    e.type,
                    e.source,
                    e.time,
                    e.cycle,
                    e.causation_id,
                    orjson.dumps(stored_body(e)).decode(),
                )
                for e in events
            ],
        )
        states = await self.load(conn, {e.ticket_id for e in events})
        changed = fold(states, events)
        if changed:
            # One statement for the batch (columns as arrays), not one per ticket.
            tickets = list(changed.values())
            await conn.execute(self._upsert, *([getattr(t, column) for t in tickets] for column in _COLUMNS))

    async def load(self, conn: asyncpg.Connection, ticket_ids: Collection[str]) -> dict[str, TicketNow]:
        rows = await conn.fetch(
            f"SELECT {_NOW} FROM {self.schema}.ticket_now WHERE ticket_id = ANY($1::text[])", list(ticket_ids)
        )
        return {row["ticket_id"]: TicketNow(*row) for row in rows}

    async def ticket(self, pool: asyncpg.Pool, ticket_id: str) -> tuple[TicketNow | None, list[dict[str, Any]]]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            now = (await self.load(conn, [ticket_id])).get(ticket_id)
            rows = await conn.fetch(
                f"SELECT seq, event_id, type, source, at, cycle, causation_id, body FROM {self.schema}.ticket_event "
                "WHERE ticket_id = $1 ORDER BY seq",
                ticket_id,
            )
        return now, [{**dict(row), "body": orjson.loads(row["body"])} for row in rows]

    async def queues(self, pool: asyncpg.Pool) -> list[asyncpg.Record]:
        return list(
            await pool.fetch(
                f"SELECT tier, queue, count(*) AS backlog, min(queued_at) AS oldest FROM {self.schema}.ticket_now "
                "WHERE status = 'open' AND tier IS NOT NULL GROUP BY tier, queue ORDER BY tier, queue"
            )
        )

    async def search(self, pool: asyncpg.Pool, prefix: str, client: str | None, limit: int = 20) -> list[str]:
        """Ticket ids starting with `prefix`, of `client` only (None: every client's)."""
        rows = await pool.fetch(
            f"SELECT ticket_id FROM {self.schema}.ticket_now WHERE ticket_id LIKE $1 || '%' "
            "AND ($3::text IS NULL OR client = $3) ORDER BY ticket_id LIMIT $2",
            prefix.replace("%", "").replace("_", r"\_"),
            limit,
            client,
        )
        return [row[0] for row in rows]

    async def handoff_timelines(
        self, pool: asyncpg.Pool, since: datetime, until: datetime, client: str | None
    ) -> dict[str, list[dict[str, Any]]]:
        """The timelines of the tickets with an escalation request in [since, until), of
        `client` only (None: every client's): what the weekly report's examples are chosen from."""
        s = self.schema
        rows = await pool.fetch(
            f"SELECT e.ticket_id, e.type, e.at, e.body FROM {s}.ticket_event e WHERE e.ticket_id IN ("
            f" SELECT r.ticket_id FROM {s}.ticket_event r JOIN {s}.ticket_now n USING (ticket_id)"
            "  WHERE r.type = 'ticket.escalation_requested' AND r.at >= $1 AND r.at < $2"
            "   AND ($3::text IS NULL OR n.client = $3)"
            ") ORDER BY e.ticket_id, e.seq",
            since,
            until,
            client,
        )
        timelines: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            timelines.setdefault(row["ticket_id"], []).append(
                {"type": row["type"], "at": row["at"], "body": orjson.loads(row["body"])}
            )
        return timelines

    async def daily(self, pool: asyncpg.Pool, since: datetime) -> list[asyncpg.Record]:
        """Per UTC day and tier, the sums the page's trends need (public aggregates)."""
        return list(
            await pool.fetch(
                "SELECT day, kind, tier, detail, sum(n)::bigint AS n, sum(good)::bigint AS good "
                f"FROM {self.schema}.daily "
                "WHERE day >= $1 GROUP BY day, kind, tier, detail ORDER BY day",
                since.date(),
            )
        )
