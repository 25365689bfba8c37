"""Retention: what is old enough to prune (pure), and pruning it in small batches (I/O).

Every dedup and state table a service keeps forever is pruned by age once its rows can no
longer change an answer. The decision is pure (`Rule.cutoff`: the rows before it go); the
deletion runs in bounded batches, each its own short transaction, so it never holds a long
lock or a long snapshot.

Invariants (tests: tests/unit/kit/test_retention.py, tests/integration/kit/test_retention.py):
1. Dedup rows (`inbox`, `inbox_duplicates`) are kept longer than any record they dedup can
   come again: a consumer's redelivery (an uncommitted batch) or a relay's re-send comes
   within minutes; the commands and dead-letter topics keep records for less than the
   retention (deploy/local/kafka.sh), so nothing older than the cutoff can be read again
   through a consumer group. Replaying the *events* topic into the same schema after its
   inbox was pruned would apply old events again: a rebuild goes into a fresh schema with a
   new consumer group (docs/architecture/delivery.md, "Retention").
2. Per-ticket state (`lifecycle`, services' ticket tables) is never pruned: a reopen or a
   rating may come any time after a resolution, and the staleness verdict must be the one a
   rebuild from the stream reaches.
3. Quarantined outbox records are kept as long as dedup rows: an operator redrives them
   (`ladder quarantine`) within the retention, then they go.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
from prometheus_client import Counter

from shared.db import schema_name

if TYPE_CHECKING:
    from shared.service import ServiceRuntime

log = logging.getLogger(__name__)

BATCH = 5_000  # rows per delete transaction: short locks, short snapshots
DEFAULT_DAYS = 30.0  # > the commands (7 d) and dead-letter (14 d) topics' retention, with a margin


@dataclass(frozen=True, slots=True)
class Rule:
    """Rows of `table` whose `column` is before `now - keep` go (and match `where`, if any)."""

    table: str
    column: str
    keep: timedelta
    where: str = "true"  # a fixed SQL condition of the service's own (never client data)

    def cutoff(self, now: datetime) -> datetime:
        return now - self.keep


def kit_rules(keep: timedelta) -> list[Rule]:
    """The delivery kit's tables in every service's schema."""
    return [
        Rule("inbox", "claimed_at", keep),
        Rule("inbox_duplicates", "seen_at", keep),
        Rule("outbox_quarantine", "quarantined_at", keep),
    ]


def plan(rules: Iterable[Rule], now: datetime) -> list[tuple[Rule, datetime]]:
    """Each rule with its cutoff. Pure."""
    return [(rule, rule.cutoff(now)) for rule in rules]


async def prune(
    pool: asyncpg.Pool, schema: str, rules: Iterable[Rule], now: datetime, *, batch: int = BATCH
) -> dict[str, int]:
    """Delete what `rules` say is old at `now`; rows removed per table."""
    removed: dict[str, int] = {}
    for rule, cutoff in plan(rules, now):
        table = f"{schema_name(schema)}.{schema_name(rule.table)}"
        column = schema_name(rule.column)
        statement = (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {column} < $1 AND ({rule.where}) LIMIT $2))"
        )
        total = 0
        while True:
            async with pool.acquire() as conn:
                done = int((await conn.execute(statement, cutoff, batch)).split()[-1])
            total += done
            if done < batch:
                break
        removed[rule.table] = removed.get(rule.table, 0) + total
    return removed


Pruner = Callable[[datetime], Awaitable[dict[str, int]]]


def schedule(runtime: ServiceRuntime, rules: list[Rule], extra: Pruner | None = None) -> None:
    """Prune `rules` (and `extra`, a service's own) every `<S>_PRUNE_INTERVAL_S`, as the
    service's periodic work `retention` (`runtime.every`: a failing pass is reported in
    readiness; pruning late changes no answer)."""
    removed = Counter(
        "support_retention_rows_removed_total",
        "Rows pruned by age, per table.",
        ["table"],
        registry=runtime.registry,
    )

    async def step() -> None:
        now = runtime.clock()
        counts = await prune(runtime.pool, runtime.schema, rules, now)
        if extra is not None:
            counts.update(await extra(now))
        for table, count in counts.items():
            removed.labels(table).inc(count)
        if any(counts.values()):
            log.info("pruned old rows", extra={"removed": counts})

    runtime.every("retention", runtime.settings.prune_interval_s, step)
