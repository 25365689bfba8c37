"""A service warns at start when PostgreSQL's lock table is small for its batches (shared/
service.py `_check_lock_table`): each batch holds an advisory lock per ticket until it commits."""

from __future__ import annotations

import logging

import asyncpg

from shared.db import lock_table_size
from tests.integration.kit.conftest import echo_env, start_warnings

WARNING = "PostgreSQL's lock table is small for these batches"


async def started_with(platform, echo_topics, unique, caplog, batch_size: str) -> list[logging.LogRecord]:
    env = echo_env(unique, *echo_topics, ECHO_BATCH_SIZE=batch_size, ECHO_CONSUMERS="2")
    return await start_warnings(env, platform.database_url, WARNING, caplog)


async def test_batches_the_lock_table_cannot_hold_are_named_at_start(platform, echo_topics, unique, caplog):
    conn = await asyncpg.connect(platform.database_url)
    try:
        table = await lock_table_size(conn)
    finally:
        await conn.close()
    too_big = str(min(10_000, table // 8 + 1))  # 2 members x 2 locks per record x 4 services > the table
    (warning,) = await started_with(platform, echo_topics, unique, caplog, too_big)
    assert warning.lock_table == table  # type: ignore[attr-defined]
    assert await started_with(platform, echo_topics, unique, caplog, "10") == []
