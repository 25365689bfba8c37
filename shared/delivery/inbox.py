"""Deduplication of consumed events by id, in the transaction that applies them.

Invariants (tests: tests/integration/kit/test_inbox.py):
1. An event id is claimed at most once per service: the claim is an insert into `inbox`
   in the same transaction as the effects, so effects and claim commit (or vanish) together.
2. A concurrent claim of the same id waits for the first transaction (unique index), then
   sees it claimed: two consumers racing after a rebalance apply an event once.
3. A record seen again at the position where its id was first claimed is a *redelivery*
   (crash before the offset commit, or a replay of the topic): silently nothing. The same
   id at another position is a *duplicate* (republished): counted once per position, so a
   replay does not count it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Read:
    """A query read along with a claim: its SQL (parameters from $3 on), its columns' names
    and types, and its arguments."""

    query: str
    columns: Sequence[tuple[str, str]]
    arguments: Sequence[object]


@dataclass(frozen=True, slots=True)
class Claims:
    fresh: frozenset[int]  # indexes (into the claimed items) to apply now
    duplicates: int  # newly seen duplicates (the id was claimed at another position)
    redelivered: int  # seen before at this very position


async def claim(conn: asyncpg.Connection, schema: str, items: Sequence[tuple[str, str]]) -> Claims:
    """Claim `(event_id, position)` items, in order; the first occurrence of an id may win."""
    claims, _ = await claim_and_read(conn, schema, items)
    return claims


async def claim_and_read(
    conn: asyncpg.Connection, schema: str, items: Sequence[tuple[str, str]], read: Read | None = None
) -> tuple[Claims, list[asyncpg.Record]]:
    """`claim`, and the rows of `read` in the same statement (a round trip fewer per batch).
    The read sees the snapshot taken before the claim, so it must not read `inbox`."""
    first: dict[str, int] = {}
    for index, (event_id, _) in enumerate(items):
        first.setdefault(event_id, index)
    insert = (
        f"INSERT INTO {schema}.inbox (event_id, position) SELECT * FROM unnest($1::text[], $2::text[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    )
    arguments: list[object] = [list(first), [items[index][1] for index in first.values()]]
    if read is None:
        claimed, rows = {row[0] for row in await conn.fetch(insert, *arguments)}, []
    else:
        # Claimed ids come as rows whose first column is the id, the read's as rows whose
        # first column is NULL (its columns follow, named by the first branch of the union).
        typed_nulls = ", ".join(f"NULL::{kind} AS {name}" for name, kind in read.columns)
        found = await conn.fetch(
            f"WITH claimed AS ({insert}) SELECT event_id, {typed_nulls} FROM claimed "
            f"UNION ALL SELECT NULL::text, r.* FROM ({read.query}) AS r",
            *arguments,
            *read.arguments,
        )
        claimed = {row[0] for row in found if row[0] is not None}
        rows = [row for row in found if row[0] is None]
    fresh = frozenset(index for event_id, index in first.items() if event_id in claimed)
    if len(fresh) == len(items):
        return Claims(fresh, 0, 0), rows

    others = [index for index in range(len(items)) if index not in fresh]
    known = dict(
        await conn.fetch(
            f"SELECT event_id, position FROM {schema}.inbox WHERE event_id = ANY($1::text[])",
            list({items[index][0] for index in others}),
        )
    )
    redelivered = [index for index in others if known.get(items[index][0]) == items[index][1]]
    elsewhere = [index for index in others if known.get(items[index][0]) != items[index][1]]
    counted = await conn.fetch(
        f"INSERT INTO {schema}.inbox_duplicates (position, event_id) SELECT * FROM unnest($1::text[], $2::text[]) "
        "ON CONFLICT DO NOTHING RETURNING position",
        [items[index][1] for index in elsewhere],
        [items[index][0] for index in elsewhere],
    )
    return Claims(fresh, len(counted), len(redelivered) + len(elsewhere) - len(counted)), rows
