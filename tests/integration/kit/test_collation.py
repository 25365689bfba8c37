"""A service warns at start when its database compares text through a locale's collation
(shared/service.py `_check_collation`): every key is an id (README: PostgreSQL)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.integration.kit.conftest import echo_env, start_warnings

WARNING = "PostgreSQL compares ids through a locale's collation"


async def started_with(database_url: str, echo_topics, unique, caplog) -> list[logging.LogRecord]:
    env = echo_env(unique, *echo_topics, DATABASE_URL=database_url)
    return await start_warnings(env, database_url, WARNING, caplog)


async def test_a_database_that_collates_through_a_locale_is_named_at_start(platform, echo_topics, unique, caplog):
    assert await started_with(platform.database_url, echo_topics, unique, caplog) == []  # the platform's: C

    name = f"ladder_locale_{unique}"
    admin = await asyncpg.connect(platform.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8'")
        url = urlunsplit(urlsplit(platform.database_url)._replace(path=f"/{name}"))
        (warning,) = await started_with(url, echo_topics, unique, caplog)
        assert warning.collation == "C.UTF-8"  # type: ignore[attr-defined]
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
