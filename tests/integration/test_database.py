"""The local platform's database (deploy/local/postgres.sh), as README "PostgreSQL" asks of any."""

import asyncpg

from shared.db import collation


async def test_the_database_compares_ids_byte_by_byte(platform):
    conn = await asyncpg.connect(platform.database_url)
    try:
        # Every key is an id: byte order (a locale's collation, C.UTF-8 included, compares
        # through strcoll: 6% more PostgreSQL CPU in the pipeline bench).
        assert await collation(conn) == "C"
        assert await conn.fetchval("SELECT 'Z' < 'a' AND 'é' > 'z'")  # bytes, not a dictionary's order
    finally:
        await conn.close()
