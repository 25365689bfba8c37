"""PostgreSQL adapter for escalation: ticket state and SLA timers, in the service's schema.

Invariants (tests: tests/integration/escalation/test_timer_store.py):
1. Whoever decides a ticket's timers holds that ticket's lock (the key the kit's consumer
   takes, `shared.delivery.locks`): the event handler inside the kit's batch, the timer
   loop through `try_lock`. The timer loop never waits for a lock (it skips what it
   cannot take), so it can never deadlock with a batch.
2. The once-only guards are in SQL: arming inserts only what is absent, settling updates
   only a pending timer.
3. A batch's changes are one statement; arming notifies every replica's timer loop, at
   commit, with the earliest new deadline.
4. A timer carries its ticket's partition; the loop claims only timers of the partitions
   it names, each due by that partition's stream time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from services.escalation.core.sla import Firing, SlaTimer, TimerState
from services.escalation.core.tickets import Changes, Ticket, Visit
from shared.delivery.locks import client_key
from shared.delivery.records import OutboxRecord
from shared.envelope import Envelope, encode
from shared.events import Priority, SlaKind, Tier
from shared.retention import Rule, kit_rules

MIGRATIONS = Path(__file__).parent / "migrations"


def retention_rules(keep: timedelta) -> list[Rule]:
    """The kit's tables and settled timers. A settled timer guards against re-arming by a
    redelivered ticket.routed; the inbox dedups those for as long, so both go together.
    Pending timers and tickets are never pruned."""
    return [*kit_rules(keep), Rule("sla_timers", "settled_at", keep, where="state <> 'pending'")]


_TICKET = (
    "ticket_id, correlation_id, priority, intent, customer_blocked, owner, visit_tier, visit_started_by, "
    "communication_owner"
)


class EscalationStore:
    def __init__(self, schema: str) -> None:
        s = self.schema = schema
        self.channel = f"{schema}_sla_timers"  # LISTEN/NOTIFY channel of the timer loops
        self._lock_kind = f"{schema}:ticket"  # as shared.delivery.locks.tickets_locked names it
        self._load = f"SELECT {_TICKET} FROM {s}.tickets WHERE ticket_id = ANY($1::text[])"
        # One statement: sub-statements share a snapshot, so the cancellation reaches only
        # timers stored before this batch (`core.tickets.apply_events` relies on that).
        self._save = f"""
WITH tickets AS (
    INSERT INTO {s}.tickets ({_TICKET})
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[],
                         $8::text[], $9::text[])
    ON CONFLICT (ticket_id) DO UPDATE SET owner = excluded.owner, visit_tier = excluded.visit_tier,
        visit_started_by = excluded.visit_started_by, communication_owner = excluded.communication_owner
), cancelled AS (
    UPDATE {s}.sla_timers AS timer SET state = 'cancelled', settled_at = now()
    FROM unnest($10::text[], $11::text[]) AS c(ticket_id, kind)
    WHERE timer.ticket_id = c.ticket_id AND timer.kind = c.kind AND timer.state = 'pending'
), armed AS (
    INSERT INTO {s}.sla_timers (armed_by, kind, ticket_id, tier, due_at, state, partition, cycle, settled_at)
    SELECT a.*, CASE WHEN a.state = 'pending' THEN NULL ELSE now() END
      FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::timestamptz[], $17::text[], $18::int[],
                  $21::integer[])
           AS a(armed_by, kind, ticket_id, tier, due_at, state, partition, cycle)
    ON CONFLICT (armed_by, kind, tier) DO NOTHING
)
SELECT pg_notify($19::text, $20::text) WHERE $20::text IS NOT NULL"""
        # Per partition this replica owns, what is due by that partition's stream time (at
        # most $3 each, from the pending-deadline index), then the earliest $3 of those.
        self._claim = f"""
SELECT t.ticket_id FROM unnest($1::int[], $2::timestamptz[]) AS w(partition, until)
CROSS JOIN LATERAL (
    SELECT ticket_id, due_at FROM {s}.sla_timers
     WHERE state = 'pending' AND partition = w.partition AND due_at <= w.until
     ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED
) AS t
ORDER BY t.due_at LIMIT $3"""
        self._pending = (
            f"SELECT {', '.join('k.' + c for c in _TICKET.split(', '))}, "
            "t.armed_by, t.kind, t.tier AS timer_tier, t.due_at, t.partition, t.cycle "
            f"FROM {s}.tickets k JOIN {s}.sla_timers t USING (ticket_id) "
            "WHERE k.ticket_id = ANY($1::text[]) AND t.state = 'pending'"
        )
        self._settle = f"""
WITH settled AS (
    UPDATE {s}.sla_timers AS timer SET state = s.state, settled_at = now()
    FROM unnest($1::text[], $2::text[], $3::text[], $6::text[]) AS s(armed_by, kind, state, tier)
    WHERE timer.armed_by = s.armed_by AND timer.kind = s.kind AND timer.tier = s.tier AND timer.state = 'pending'
)
UPDATE {s}.tickets AS k SET owner = m.owner FROM unnest($4::text[], $5::text[]) AS m(ticket_id, owner)
 WHERE k.ticket_id = m.ticket_id"""
        self._next_due = (
            f"SELECT w.partition, (SELECT min(due_at) FROM {s}.sla_timers "
            "WHERE state = 'pending' AND partition = w.partition) FROM unnest($1::int[]) AS w(partition)"
        )
        self._unplaced = f"SELECT ticket_id FROM {s}.sla_timers WHERE state = 'pending' AND partition IS NULL LIMIT $1"
        self._place = (
            f"UPDATE {s}.sla_timers AS t SET partition = p.partition "
            "FROM unnest($1::text[], $2::int[]) AS p(ticket_id, partition) "
            "WHERE t.ticket_id = p.ticket_id AND t.partition IS NULL"
        )
        self._count = f"SELECT count(*) FROM {s}.sla_timers WHERE state = 'pending'"

    # --- the event handler, inside the kit's batch (ticket locks held) ---------------------

    async def load(self, conn: asyncpg.Connection, ticket_ids: Iterable[str]) -> dict[str, Ticket]:
        return {row["ticket_id"]: _ticket(row) for row in await conn.fetch(self._load, list(ticket_ids))}

    async def save(self, conn: asyncpg.Connection, changes: Changes, partitions: Mapping[str, int]) -> None:
        """`partitions`: the partition of each ticket's records (its timers fire on its stream time)."""
        tickets = list(changes.tickets.values())
        cancels = sorted(changes.cancels)
        timers = list(changes.timers.values())
        pending = [t.due_at for t in timers if t.state is TimerState.PENDING]
        await conn.execute(
            self._save,
            [t.ticket_id for t in tickets],
            [t.correlation_id for t in tickets],
            [t.priority.value for t in tickets],
            [t.intent for t in tickets],
            [t.customer_blocked for t in tickets],
            [_name(t.owner) for t in tickets],
            [_name(t.visit.tier) if t.visit else None for t in tickets],
            [t.visit.started_by if t.visit else None for t in tickets],
            [_name(t.communication_owner) for t in tickets],
            [ticket for ticket, _ in cancels],
            [kind.value for _, kind in cancels],
            [t.armed_by for t in timers],
            [t.kind.value for t in timers],
            [t.ticket_id for t in timers],
            [t.tier.value for t in timers],
            [t.due_at for t in timers],
            [t.state.value for t in timers],
            [partitions[t.ticket_id] for t in timers],
            self.channel,
            min(pending).isoformat() if pending else None,
            [t.cycle for t in timers],
        )

    # --- the timer loop --------------------------------------------------------------------

    async def claim_due(self, conn: asyncpg.Connection, stream_time: Mapping[int, datetime], limit: int) -> list[str]:
        """Tickets of up to `limit` timers due by the stream time of their partition (only
        the partitions in `stream_time`: this replica's), in deadline order; the timers are
        row-locked for this transaction and skipped by other replicas' loops."""
        partitions = sorted(stream_time)
        rows = await conn.fetch(self._claim, partitions, [stream_time[p] for p in partitions], limit)
        return list(dict.fromkeys(row[0] for row in rows))

    async def try_lock(self, conn: asyncpg.Connection, ticket_ids: Sequence[str]) -> list[str]:
        """The tickets whose lock this transaction could take without waiting (a batch in
        progress holds the others; they are tried again on the next pass)."""
        keys = {client_key(self._lock_kind, ticket): ticket for ticket in ticket_ids}
        locked = await conn.fetch(
            "SELECT k FROM unnest($1::bigint[]) AS k WHERE pg_try_advisory_xact_lock(k)", sorted(keys)
        )
        return [keys[row[0]] for row in locked]

    async def pending(
        self, conn: asyncpg.Connection, ticket_ids: Sequence[str]
    ) -> list[tuple[Ticket, int | None, list[SlaTimer]]]:
        """Each ticket with its partition and all its pending timers (due or not), read
        after its lock was taken. A ticket's timers all carry its partition."""
        found: dict[str, tuple[Ticket, int | None, list[SlaTimer]]] = {}
        for row in await conn.fetch(self._pending, list(ticket_ids)):
            ticket, _, timers = found.setdefault(row["ticket_id"], (_ticket(row), row["partition"], []))
            timers.append(
                SlaTimer(
                    ticket.ticket_id,
                    SlaKind(row["kind"]),
                    Tier(row["timer_tier"]),
                    row["due_at"],
                    row["armed_by"],
                    cycle=row["cycle"],
                )
            )
        return list(found.values())

    async def settle(self, conn: asyncpg.Connection, firings: Sequence[tuple[str, Firing]]) -> None:
        timers = [timer for _, firing in firings for timer in firing.settled]
        moved = [(ticket, firing.owner) for ticket, firing in firings if firing.owner is not None]
        if timers or moved:
            await conn.execute(
                self._settle,
                [t.armed_by for t in timers],
                [t.kind.value for t in timers],
                [t.state.value for t in timers],
                [ticket for ticket, _ in moved],
                [owner.value for _, owner in moved],
                [t.tier.value for t in timers],
            )

    async def next_due(self, conn: asyncpg.Connection, partitions: Iterable[int]) -> dict[int, datetime]:
        """The earliest pending deadline of each of `partitions` that has one."""
        rows = await conn.fetch(self._next_due, sorted(partitions))
        return {row[0]: row[1] for row in rows if row[1] is not None}

    async def unplaced(self, conn: asyncpg.Connection, limit: int) -> list[str]:
        """Tickets with pending timers armed before timers carried a partition (0002)."""
        return list(dict.fromkeys(row[0] for row in await conn.fetch(self._unplaced, limit)))

    async def place(self, conn: asyncpg.Connection, partitions: Mapping[str, int]) -> None:
        await conn.execute(self._place, list(partitions), list(partitions.values()))

    async def pending_count(self, conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval(self._count))


def outbox_records(topic: str, envelopes: Sequence[Envelope]) -> list[OutboxRecord]:
    """Events for the kit's outbox (staged in the transaction that decided them)."""
    return [OutboxRecord(topic, r.key, r.value, r.headers) for r in map(encode, envelopes)]


def _name(tier: Tier | None) -> str | None:
    return None if tier is None else tier.value


def _tier(value: str | None) -> Tier | None:
    return None if value is None else Tier(value)


def _ticket(row: asyncpg.Record) -> Ticket:
    visit = Visit(Tier(row["visit_tier"]), row["visit_started_by"]) if row["visit_tier"] is not None else None
    return Ticket(
        row["ticket_id"],
        row["correlation_id"],
        Priority(row["priority"]),
        row["intent"],
        row["customer_blocked"],
        _tier(row["owner"]),
        visit,
        _tier(row["communication_owner"]),
    )
