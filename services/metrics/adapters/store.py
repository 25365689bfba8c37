"""The KPI projection in PostgreSQL: ticket states, samples and their daily sums (written in
the kit's transaction), and the sums and ranks the KPIs are computed from (read in one
snapshot). Schema: migrations/0001_metrics.sql.

Invariants (tests: tests/integration/metrics/test_store.py):
1. A batch costs five statements whatever its size: read the states, write the states, the
   samples, the daily sums and the totals. The sums go last and add to one random shard of
   rows, sorted: concurrent batches rarely share a row, hold one only until the commit, and
   lock in one order (no deadlock).
2. Summed over shards, the daily sums and the totals equal the samples' sums, key by key.
3. A window is exact to the microsecond: its whole days come from `daily`, its first,
   partial day from `sample` (at or after now - window); all time from `total`. A bounded
   window (a report's week, [since, until)) likewise: whole days from `daily`, the partial
   first and last days from `sample`; its quantiles count only samples inside both bounds.
4. Quantiles are nearest rank, equal to PostgreSQL's `percentile_disc`: the counts per
   duration bucket say which bucket holds rank k and the rank inside it; a walk along the
   rank index inside that one bucket finds the value. No sort of every duration ever
   recorded, and no walk longer than one bucket.
5. A refresh reads one snapshot (REPEATABLE READ, read only): it never mixes two states of
   the projection, and every replica computes from the same tables.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg

from services.metrics.core import retention
from services.metrics.core.kpis import (
    WINDOWS,
    Ranked,
    RankLookup,
    Snapshot,
    Total,
    Totals,
    WindowKpis,
    rank_lookups,
    snapshot,
    tiers_shown,
    window_kpis,
)
from services.metrics.core.visits import Kind, Resolution, Sample, TicketState, Visit, roll_up
from shared.retention import Rule, kit_rules

MIGRATIONS = Path(__file__).parent / "migrations"
SHARDS = 8  # rows per key in `daily` and `total`: concurrent batches add to different ones
_KINDS = [kind.value for kind in Kind]


class ProjectionStore:
    def __init__(self, schema: str) -> None:
        self.schema = schema

    # --- the projection's writes (inside the kit's transaction) ---------------------------

    async def load(self, conn: asyncpg.Connection, ticket_ids: Collection[str]) -> dict[str, TicketState]:
        if not ticket_ids:
            return {}
        rows = await conn.fetch(
            f"SELECT * FROM {self.schema}.ticket WHERE ticket_id = ANY($1::text[])", list(ticket_ids)
        )
        return {row["ticket_id"]: _state(row) for row in rows}

    async def save(
        self, conn: asyncpg.Connection, states: Mapping[str, TicketState], samples: Sequence[Sample]
    ) -> None:
        s = self.schema
        if states:
            await conn.execute(
                f"INSERT INTO {s}.ticket SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], "
                "$4::timestamptz[], $5::boolean[], $6::boolean[], $7::text[], $8::timestamptz[], $9::boolean[], "
                "$10::timestamptz[], $11::boolean[]) "
                "ON CONFLICT (ticket_id) DO UPDATE SET cycle_start = excluded.cycle_start, "
                "visit_tier = excluded.visit_tier, visit_start = excluded.visit_start, "
                "visit_escalation_requested = excluded.visit_escalation_requested, "
                "visit_responded = excluded.visit_responded, resolution_tier = excluded.resolution_tier, "
                "resolution_at = excluded.resolution_at, resolution_first_contact = excluded.resolution_first_contact, "
                "first_resolved_at = excluded.first_resolved_at, escalated = excluded.escalated",
                *_columns(_row(ticket, state) for ticket, state in states.items()),
            )
        if not samples:
            return
        # COPY: the cheapest way in for rows that are only ever appended
        await conn.copy_records_to_table("sample", schema_name=s, records=samples, columns=Sample._fields)
        daily, total = roll_up(samples)
        shard = random.randrange(SHARDS)
        await conn.execute(
            f"INSERT INTO {s}.daily SELECT d, k, t, x, $8, n, g, m FROM unnest($1::date[], $2::text[], $3::text[], "
            "$4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(d, k, t, x, n, g, m) "
            "ON CONFLICT (day, kind, tier, detail, shard) DO UPDATE SET n = daily.n + excluded.n, "
            "good = daily.good + excluded.good, micros = daily.micros + excluded.micros",
            *_columns((*key, *sums) for key, sums in daily.items()),
            shard,
        )
        await conn.execute(
            f"INSERT INTO {s}.total SELECT k, t, x, $7, n, g, m FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::bigint[], $5::bigint[], $6::bigint[]) AS u(k, t, x, n, g, m) "
            "ON CONFLICT (kind, tier, detail, shard) DO UPDATE SET n = total.n + excluded.n, "
            "good = total.good + excluded.good, micros = total.micros + excluded.micros",
            *_columns((*key, *sums) for key, sums in total.items()),
            shard,
        )

    # --- what KPIs are computed from (one read-only snapshot) -----------------------------

    async def read(self, pool: asyncpg.Pool, now: datetime) -> Snapshot:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            since = {name: None if span is None else now - span for name, span in WINDOWS.items()}
            totals = {
                name: await (self._totals_all(conn) if start is None else self._totals_since(conn, start))
                for name, start in since.items()
            }
            ranked = await self._ranked(
                conn, {name: (since[name], None, rank_lookups(totals[name])) for name in since}, totals
            )
            backlog = dict(
                await conn.fetch(
                    f"SELECT visit_tier, count(*) FROM {self.schema}.ticket "
                    "WHERE visit_tier IS NOT NULL GROUP BY visit_tier"
                )
            )
        return snapshot(now, totals, ranked, backlog)

    async def read_window(self, pool: asyncpg.Pool, since: datetime, until: datetime) -> WindowKpis:
        """The KPIs of the samples at or after `since` and before `until` (a week of the
        report): the same sums and nearest ranks as the rolling windows, bounded at both ends."""
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            totals = await self._totals_between(conn, since, until)
            ranked = await self._ranked(conn, {"window": (since, until, rank_lookups(totals))})
        return window_kpis(totals, ranked["window"], tiers_shown(totals, {}))

    async def _totals_all(self, conn: asyncpg.Connection) -> Totals:
        return _totals(
            await conn.fetch(
                f"SELECT kind, tier, detail, sum(n)::bigint, sum(good)::bigint, sum(micros)::bigint "
                f"FROM {self.schema}.total GROUP BY kind, tier, detail"
            )
        )

    async def _totals_since(self, conn: asyncpg.Connection, since: datetime) -> Totals:
        """Whole days after `since`'s day from the daily sums, the rest of its day from samples."""
        first_day = since.astimezone(UTC).date()
        first_day_end = datetime.combine(first_day + timedelta(days=1), time(), UTC)
        s = self.schema
        return _totals(
            await conn.fetch(
                f"SELECT kind, tier, detail, sum(n)::bigint, sum(good)::bigint, sum(micros)::bigint FROM ("
                f" SELECT kind, tier, detail, n, good, micros FROM {s}.daily WHERE day > $1"
                " UNION ALL"
                f" SELECT kind, tier, detail, n, good, coalesce(micros, 0) FROM {s}.sample"
                "  WHERE kind = ANY($2::text[]) AND at >= $3 AND at < $4"
                ") AS part GROUP BY kind, tier, detail",
                first_day,
                _KINDS,
                since,
                first_day_end,
            )
        )

    async def _totals_between(self, conn: asyncpg.Connection, since: datetime, until: datetime) -> Totals:
        """The days wholly inside [since, until) from the daily sums, the parts of the first
        and last day outside them from samples (none when both ends are UTC midnights)."""
        first_whole = since.astimezone(UTC).date()
        if since != datetime.combine(first_whole, time(), UTC):
            first_whole += timedelta(days=1)
        last_day = until.astimezone(UTC).date()  # days before it end by `until`
        head_end = min(datetime.combine(first_whole, time(), UTC), until)
        tail_start = max(datetime.combine(last_day, time(), UTC), head_end)
        s = self.schema
        return _totals(
            await conn.fetch(
                f"SELECT kind, tier, detail, sum(n)::bigint, sum(good)::bigint, sum(micros)::bigint FROM ("
                f" SELECT kind, tier, detail, n, good, micros FROM {s}.daily WHERE day >= $1 AND day < $2"
                " UNION ALL"
                f" SELECT kind, tier, detail, n, good, coalesce(micros, 0) FROM {s}.sample"
                "  WHERE kind = ANY($3::text[]) AND ((at >= $4 AND at < $5) OR (at >= $6 AND at < $7))"
                ") AS part GROUP BY kind, tier, detail",
                first_whole,
                last_day,
                _KINDS,
                since,
                head_end,
                tail_start,
                until,
            )
        )

    async def _ranked(
        self,
        conn: asyncpg.Connection,
        lookups: Mapping[str, tuple[datetime | None, datetime | None, list[RankLookup]]],
        nested: Mapping[str, Totals] | None = None,
    ) -> Mapping[str, Ranked]:
        """Every window's quantiles in one statement: per lookup, a walk along the rank index
        inside one duration bucket, counting only the window's samples. With `nested` (the
        windows' totals, when each window holds the next: same end, earlier start), a walk
        is made once for windows with as many samples in that bucket: they hold the same ones."""
        ranked: dict[str, dict[tuple[str, str, float], int]] = {name: {} for name in lookups}
        asked: dict[object, list[tuple[str, RankLookup]]] = {}
        wanted = []
        for name, (since, until, found) in lookups.items():
            for lookup in found:
                same: object = (name, lookup)
                if nested is not None:
                    held = nested[name][(lookup.kind, lookup.tier, str(lookup.bucket))].n
                    same = (lookup.kind, lookup.tier, lookup.bucket, lookup.residual, held)
                if same not in asked:
                    asked[same] = []
                    wanted.append((same, since, until, lookup))
                asked[same].append((name, lookup))
        if not wanted:
            return ranked
        rows = await conn.fetch(
            "SELECT ("
            f" SELECT s.micros FROM {self.schema}.sample s"
            "  WHERE s.kind = q.kind AND s.tier = q.tier AND s.detail = q.bucket AND s.micros IS NOT NULL"
            "   AND (q.since IS NULL OR s.at >= q.since) AND (q.until IS NULL OR s.at < q.until)"
            "  ORDER BY s.micros OFFSET q.residual - 1 LIMIT 1"
            ") FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[])"
            " WITH ORDINALITY AS q(kind, tier, bucket, residual, since, until, i) ORDER BY q.i",
            [x.kind for _, _, _, x in wanted],
            [x.tier for _, _, _, x in wanted],
            [str(x.bucket) for _, _, _, x in wanted],
            [x.residual for _, _, _, x in wanted],
            [since for _, since, _, _ in wanted],
            [until for _, _, until, _ in wanted],
        )
        for (same, _, _, _), (micros,) in zip(wanted, rows, strict=True):
            for name, lookup in asked[same]:
                ranked[name][(lookup.kind, lookup.tier, lookup.quantile)] = micros
        return ranked


def retention_rules(keep: timedelta) -> list[Rule]:
    """The kit's tables, then counted samples and daily sums no window or report week reads
    any more (services/metrics/core/retention.py); duration samples stay for `all`'s quantiles.
    Timelines keep the retention's events (a ticket's current state, `ticket_now`, stays)."""
    counted = ", ".join(f"'{kind}'" for kind in retention.COUNTED_KINDS)  # our enum's values, not client data
    old = retention.keep(keep)
    return [
        *kit_rules(keep),
        Rule("sample", "at", old, where=f"kind IN ({counted})"),
        Rule("daily", "day", retention.keep_daily(keep)),  # the weekly report reads further back
        Rule("ticket_event", "at", keep),
    ]


def _columns(rows: Iterable[Sequence[object]]) -> list[tuple[object, ...]]:
    """Rows as columns: one array parameter each."""
    return list(zip(*rows, strict=True))


def _totals(rows: Sequence[asyncpg.Record]) -> dict[tuple[str, str, str], Total]:
    return {(kind, tier, detail): Total(n, good, micros) for kind, tier, detail, n, good, micros in rows}


def _state(row: asyncpg.Record) -> TicketState:
    visit = None
    if row["visit_tier"] is not None:
        visit = Visit(row["visit_tier"], row["visit_start"], row["visit_escalation_requested"], row["visit_responded"])
    resolution = None
    if row["resolution_tier"] is not None:
        resolution = Resolution(row["resolution_tier"], row["resolution_at"], row["resolution_first_contact"])
    return TicketState(row["cycle_start"], visit, resolution, row["first_resolved_at"], row["escalated"])


def _row(ticket_id: str, state: TicketState) -> tuple[object, ...]:
    visit, resolution = state.visit, state.resolution
    return (
        ticket_id,
        state.cycle_start,
        visit and visit.tier,
        visit and visit.started_at,
        bool(visit and visit.escalation_requested),
        bool(visit and visit.responded),
        resolution and resolution.tier,
        resolution and resolution.at,
        bool(resolution and resolution.first_contact),
        state.first_resolved_at,
        state.escalated,
    )
