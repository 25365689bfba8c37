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
class Claims:
    fresh: frozenset[int]  # indexes (into the claimed items) to apply now
    duplicates: int  # newly seen duplicates (the id was claimed at another position)
    redelivered: int  # seen before at this very position


async def claim(conn: asyncpg.Connection, schema: str, items: Sequence[tuple[str, str]]) -> Claims:
    """Claim `(event_id, position)` items, in order; the first occurrence of an id may win."""
    first: dict[str, int] = {}
    for index, (event_id, _) in enumerate(items):
        first.setdefault(event_id, index)
    claimed = {
        row[0]
        for row in await conn.fetch(
            f"INSERT INTO {schema}.inbox (event_id, position) SELECT * FROM unnest($1::text[], $2::text[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            list(first),
            [items[index][1] for index in first.values()],
        )
    }
    fresh = frozenset(index for event_id, index in first.items() if event_id in claimed)
    if len(fresh) == len(items):
        return Claims(fresh, 0, 0)

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
    return Claims(fresh, len(counted), len(redelivered) + len(elsewhere) - len(counted))
