"""PostgreSQL advisory locks, in two key spaces that can never meet.

PostgreSQL keeps advisory locks taken with one `bigint` key apart from those taken with
two `integer` keys (`pg_locks.objsubid` 1 vs 2): the same bits in the two forms are
different locks. Hence:
1. Locks named by client data (ticket ids, idempotency keys) use the one-`bigint` form,
   a hash of a kind prefix (service schema and what is locked) and the value: ids are
   only ever hashed, never part of SQL.
2. The kit's own locks (relay leadership, migrations, SLA timers) use the two-`integer`
   form, `(LADDER, hash of the name)`: no client input can reach that key space, whatever
   the id (an id equal to an internal lock's name takes an unrelated lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping

import asyncpg

LADDER = 0x4C414444  # "LADD": first key of every internal (two-integer) lock


def client_key(kind: str, value: str) -> int:
    """The one-`bigint` key for a lock named by client data (`kind` is e.g. "ticket")."""
    digest = hashlib.blake2b(f"{kind}\x00{value}".encode(errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def internal_key(name: str) -> tuple[int, int]:
    """The two-`integer` key of an internal lock, e.g. `internal_key("relay:intake")`."""
    return LADDER, int.from_bytes(zlib.crc32(name.encode()).to_bytes(4, "big"), "big", signed=True)


def lock_statement(locks: Mapping[str, Iterable[str]]) -> str:
    """One statement taking transaction-scoped locks on the values of each kind (e.g.
    `{"intake:ticket": ticket_ids}`), all sorted together: concurrent transactions always wait
    in the same order, so they never deadlock. The keys are integers computed here, so
    inlining them is safe (and spares a round trip's parameters)."""
    keys = {client_key(kind, value) for kind, values in locks.items() for value in values}
    listed = ",".join(str(key) for key in sorted(keys))
    return f"SELECT pg_advisory_xact_lock(k) FROM unnest('{{{listed}}}'::bigint[]) AS k"


async def begin_locked(conn: asyncpg.Connection, locks: Mapping[str, Iterable[str]]) -> None:
    """Open a transaction holding these locks (`lock_statement`) until it ends. BEGIN and the
    locks travel as one simple query, a round trip fewer than a BEGIN of its own. The locks
    come before any read: in READ COMMITTED a statement reads from a snapshot taken when it
    starts, i.e. before it waited for a lock."""
    await conn.execute(f"BEGIN; {lock_statement(locks)}")


@contextlib.asynccontextmanager
async def tickets_locked(conn: asyncpg.Connection, schema: str, ticket_ids: Iterable[str]) -> AsyncIterator[None]:
    """A transaction holding this service's locks on these tickets until it ends (across its
    replicas; other services take their own locks): committed when the block returns,
    rolled back when it raises."""
    try:
        await begin_locked(conn, {f"{schema}:ticket": ticket_ids})
        yield
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            with contextlib.suppress(Exception):  # a broken connection: the pool discards it
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
