"""Claims of event ids on real PostgreSQL: once per id, racing claims wait for each other,
a replay is told apart from a duplicate."""

import asyncio

import asyncpg

from shared.db import drop_schemas
from shared.delivery.inbox import Read, claim, claim_and_read
from shared.service import migrate


async def test_claims(platform, unique):
    schema = f"inbox_{unique}"
    pool = await asyncpg.create_pool(platform.database_url, min_size=2, max_size=4)
    try:
        await migrate(pool, schema, None)
        async with pool.acquire() as conn, conn.transaction():
            first = await claim(conn, schema, [("e1", "p/0/1@1"), ("e2", "p/0/2@1"), ("e1", "p/0/3@1")])
        assert (first.fresh, first.duplicates, first.redelivered) == (frozenset({0, 1}), 1, 0)
        async with pool.acquire() as conn, conn.transaction():
            replay = await claim(conn, schema, [("e1", "p/0/1@1"), ("e2", "p/0/2@1"), ("e1", "p/0/3@1")])
        assert (replay.fresh, replay.duplicates, replay.redelivered) == (frozenset(), 0, 3)  # a replay counts nothing
        async with pool.acquire() as conn, conn.transaction():
            again = await claim(conn, schema, [("e2", "p/1/9@5")])  # republished elsewhere: a new duplicate
        assert (again.fresh, again.duplicates) == (frozenset(), 1)

        # Two transactions race for one id: the second waits for the first, then sees it taken.
        holder = await pool.acquire()
        tx = holder.transaction()
        await tx.start()
        assert (await claim(holder, schema, [("e3", "p/0/4@1")])).fresh == frozenset({0})

        async def rival():
            async with pool.acquire() as conn, conn.transaction():
                return await claim(conn, schema, [("e3", "p/0/4@1")])

        racing = asyncio.create_task(rival())
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting on the uncommitted claim
        await tx.commit()
        await pool.release(holder)
        assert (await racing).fresh == frozenset()

        # A rolled-back claim leaves nothing behind.
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await claim(conn, schema, [("e4", "p/0/5@1")])
                    raise RuntimeError("effects failed")
            except RuntimeError:
                pass
            async with conn.transaction():
                assert (await claim(conn, schema, [("e4", "p/0/5@1")])).fresh == frozenset({0})
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)


async def test_a_claim_carries_a_read_in_the_same_statement(platform, unique):
    """The read's rows come back by their own column names, whether or not anything was
    claimed, and apart from the claimed ids (even an id that looks like a read row)."""
    schema = f"inbox_read_{unique}"
    pool = await asyncpg.create_pool(platform.database_url, min_size=1, max_size=2)
    read = Read(
        f"SELECT ticket_id, status, cycle FROM {schema}.lifecycle WHERE ticket_id = ANY($3::text[]) ORDER BY ticket_id",
        (("ticket_id", "text"), ("status", "text"), ("cycle", "integer")),
        [["t1", "t2", "t3"]],
    )
    try:
        await migrate(pool, schema, None)
        async with pool.acquire() as conn, conn.transaction():
            claims, rows = await claim_and_read(conn, schema, [("e1", "p/0/1@1")], read)
            assert (claims.fresh, rows) == (frozenset({0}), [])  # nothing to read yet
            await conn.execute(
                f"INSERT INTO {schema}.lifecycle (ticket_id, status, rated, cycle) "
                "VALUES ('t1', 'open', false, 1), ('t2', 'resolved', true, 3)"
            )
        async with pool.acquire() as conn, conn.transaction():
            claims, rows = await claim_and_read(conn, schema, [("t1", "p/0/2@1"), ("e1", "p/0/1@1")], read)
        assert (claims.fresh, claims.redelivered) == (frozenset({0}), 1)
        assert [(row["ticket_id"], row["status"], row["cycle"]) for row in rows] == [
            ("t1", "open", 1),
            ("t2", "resolved", 3),
        ]
        async with pool.acquire() as conn, conn.transaction():
            claims, rows = await claim_and_read(conn, schema, [("t1", "p/0/2@1")], read)  # all seen before
        assert (claims.fresh, claims.redelivered, len(rows)) == (frozenset(), 1, 2)
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)
