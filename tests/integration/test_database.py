"""The local platform's database (deploy/local/postgres.sh), as README "PostgreSQL" asks of any."""

import asyncpg


async def test_the_database_compares_ids_byte_by_byte(platform):
    conn = await asyncpg.connect(platform.database_url)
    try:
        # Every key is an id: byte order (a locale's collation, C.UTF-8 included, compares
        # through strcoll: 6% more PostgreSQL CPU in the pipeline bench).
        assert await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = current_database()") == "C"
        assert await conn.fetchval("SELECT 'Z' < 'a' AND 'é' > 'z'")
    finally:
        await conn.close()
