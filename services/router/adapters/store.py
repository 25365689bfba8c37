"""PostgreSQL adapter for router: tickets and agents' seats in the service's schema.

A batch costs at most four statements of its own: the tiers of its known tickets, the tier
locks (which return the seats), its tickets with the waiting tickets it may assign, and
one write of tickets and seats (a batch of new tickets skips the first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import asyncpg

from services.router.core.assignment import Desk, Seat
from services.router.core.dispatch import Ticket
from shared.charter import Charter
from shared.events import Priority, Tier

MIGRATIONS = Path(__file__).parent / "migrations"
_COLUMNS = (
    "ticket_id, correlation_id, intent, priority, tier, queue, assignee, communication_owner, urgent, "
    "shadow, resolved, queued_at, routed_id, cycle"
)
_WAITING = "assignee IS NULL AND NOT resolved AND NOT shadow"


def _ticket(row: asyncpg.Record) -> Ticket:
    owner = row[7]
    return Ticket(
        row[0],
        row[1],
        row[2],
        Priority(row[3]),
        Tier(row[4]),
        row[5],
        row[6],
        Tier(owner) if owner is not None else None,
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
    )


class RouterStore:
    """Statements of one transaction (`conn` is inside it)."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self._conn, self._schema = conn, schema

    async def tiers_of(self, ticket_ids: Sequence[str]) -> dict[str, Tier]:
        """Where these tickets are. A ticket's tier changes only under its own lock, which the
        caller holds, so this may be read before the tier locks."""
        rows = await self._conn.fetch(
            f"SELECT ticket_id, tier FROM {self._schema}.tickets WHERE ticket_id = ANY($1::text[])", list(ticket_ids)
        )
        return {row[0]: Tier(row[1]) for row in rows}

    async def lock_desks(self, tiers: Iterable[Tier]) -> dict[Tier, dict[str, Seat]]:
        """Lock the tiers (their agents' rows, in one sorted statement) and return the seats.
        Everything read after this statement sees the tiers as they are until commit."""
        rows = await self._conn.fetch(
            f"SELECT tier, agent, open_tickets, turn FROM {self._schema}.agents WHERE tier = ANY($1::text[]) "
            "ORDER BY tier, agent FOR UPDATE",
            sorted(tiers),
        )
        seats: dict[Tier, dict[str, Seat]] = {}
        for tier, agent, open_tickets, turn in rows:
            seats.setdefault(Tier(tier), {})[agent] = Seat(open_tickets, turn)
        return seats

    async def load(
        self, ticket_ids: Sequence[str], wanted: dict[Tier, tuple[int, bool]]
    ) -> tuple[dict[str, Ticket], list[Ticket]]:
        """The batch's tickets, and per tier the first `n` waiting tickets in line (only urgent
        ones when the tier is not live). Read after `lock_desks`: no other writer assigns them."""
        if not ticket_ids and not wanted:
            return {}, []
        parts = [f"SELECT 0, {_COLUMNS} FROM {self._schema}.tickets WHERE ticket_id = ANY($1::text[])"]
        arguments: list[object] = [list(ticket_ids)]
        for tier, (limit, live) in sorted(wanted.items()):
            urgent = "" if live else " AND urgent"
            parts.append(
                f"(SELECT 1, {_COLUMNS} FROM {self._schema}.tickets WHERE tier = ${len(arguments) + 1} "
                f"AND {_WAITING}{urgent} ORDER BY priority, queued_at, ticket_id LIMIT ${len(arguments) + 2})"
            )
            arguments += [tier.value, limit]
        tickets: dict[str, Ticket] = {}
        waiting: list[Ticket] = []
        for row in await self._conn.fetch(" UNION ALL ".join(parts), *arguments):
            ticket = _ticket(row[1:])
            if row[0] == 0:
                tickets[ticket.ticket_id] = ticket
            else:
                waiting.append(ticket)
        return tickets, waiting

    async def save(self, tickets: Sequence[Ticket], desks: Iterable[Desk]) -> None:
        """Write changed tickets and seats in one statement."""
        seats = [(desk.tier.value, agent, desk.seats[agent]) for desk in desks for agent in sorted(desk.changed)]
        if not tickets and not seats:
            return
        s = self._schema
        await self._conn.execute(
            f"WITH saved AS (INSERT INTO {s}.tickets ({_COLUMNS}) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
            "$8::text[], $9::boolean[], $10::boolean[], $11::boolean[], $12::timestamptz[], $13::text[], "
            "$18::integer[]) "
            "ON CONFLICT (ticket_id) DO UPDATE SET tier = excluded.tier, queue = excluded.queue, "
            "assignee = excluded.assignee, communication_owner = excluded.communication_owner, "
            "urgent = excluded.urgent, shadow = excluded.shadow, resolved = excluded.resolved, "
            "queued_at = excluded.queued_at, routed_id = excluded.routed_id, cycle = excluded.cycle) "
            f"UPDATE {s}.agents a SET open_tickets = c.open, turn = c.turn "
            "FROM unnest($14::text[], $15::text[], $16::integer[], $17::bigint[]) AS c(tier, agent, open, turn) "
            "WHERE a.tier = c.tier AND a.agent = c.agent",
            [t.ticket_id for t in tickets],
            [t.correlation_id for t in tickets],
            [t.intent for t in tickets],
            [t.priority.value for t in tickets],
            [t.tier.value for t in tickets],
            [t.queue for t in tickets],
            [t.assignee for t in tickets],
            [t.communication_owner.value if t.communication_owner else None for t in tickets],
            [t.urgent for t in tickets],
            [t.shadow for t in tickets],
            [t.resolved for t in tickets],
            [t.queued_at for t in tickets],
            [t.routed_id for t in tickets],
            [tier for tier, _, _ in seats],
            [agent for _, agent, _ in seats],
            [seat.open for _, _, seat in seats],
            [seat.turn for _, _, seat in seats],
            [t.cycle for t in tickets],
        )

    async def waiting_tiers(self, tiers: Iterable[Tier]) -> set[Tier]:
        """The tiers with at least one ticket waiting for an agent (an index probe each)."""
        rows = await self._conn.fetch(
            f"SELECT t FROM unnest($1::text[]) AS t WHERE EXISTS "
            f"(SELECT 1 FROM {self._schema}.tickets WHERE tier = t AND {_WAITING})",
            [t.value for t in tiers],
        )
        return {Tier(row[0]) for row in rows}

    async def queue_depths(self) -> list[tuple[str, str, int]]:
        """Open tickets nobody is assigned to, per tier and queue (shadow queues included)."""
        rows = await self._conn.fetch(
            f"SELECT tier, queue, count(*) FROM {self._schema}.tickets "
            "WHERE assignee IS NULL AND NOT resolved GROUP BY tier, queue"
        )
        return [(row[0], row[1], row[2]) for row in rows]


async def sync_roster(pool: asyncpg.Pool, schema: str, charter: Charter) -> None:
    """A seat for every agent on the charter's rosters (rows of agents who left stay: they may
    still hold open tickets, which count until they are resolved or moved)."""
    pairs = [(tier.value, agent) for tier, spec in charter.tiers.items() for agent in spec.roster.agents]
    async with pool.acquire() as conn:
        await conn.execute(
            f"INSERT INTO {schema}.agents (tier, agent) SELECT * FROM unnest($1::text[], $2::text[]) "
            "ON CONFLICT DO NOTHING",
            [tier for tier, _ in pairs],
            [agent for _, agent in pairs],
        )
