"""The transactional outbox: records are staged in the same PostgreSQL transaction as the
effects that caused them, and `OutboxRelay` publishes them after the commit.

Invariants:
1. No dual write: a record exists exactly when its cause's effects were committed.
2. Headers are stored as bytes (`encode_headers`), so any header survives: names with
   NUL characters, binary and null values (PostgreSQL's text and jsonb cannot hold NUL).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import asyncpg

from shared.delivery.records import OutboxRecord
from shared.envelope import Headers

_LENGTH = struct.Struct(">i")
_NULL = -1


def encode_headers(headers: Headers) -> bytes:
    """`[(name, value)]` as `(>i len, name utf-8, >i len or -1 for null, value)*`."""
    parts = []
    for name, value in headers:
        raw_name = name.encode(errors="surrogateescape")
        parts += [_LENGTH.pack(len(raw_name)), raw_name]
        if value is None:
            parts.append(_LENGTH.pack(_NULL))
        else:
            parts += [_LENGTH.pack(len(value)), value]
    return b"".join(parts)


def decode_headers(data: bytes) -> Headers:
    headers: Headers = []
    at, end = 0, len(data)
    while at < end:
        (size,) = _LENGTH.unpack_from(data, at)
        name = data[at + 4 : at + 4 + size].decode(errors="surrogateescape")
        at += 4 + size
        (size,) = _LENGTH.unpack_from(data, at)
        at += 4
        if size == _NULL:
            headers.append((name, None))
        else:
            headers.append((name, data[at : at + size]))
            at += size
    return headers


def stage_statement(schema: str) -> str:
    """Insert a batch of records given as four arrays (topic, key, value, headers)."""
    return (
        f"INSERT INTO {schema}.outbox (topic, key, value, headers) "
        "SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[])"
    )


def stage_arguments(
    records: Sequence[OutboxRecord],
) -> tuple[list[str], list[bytes | None], list[bytes | None], list[bytes]]:
    return (
        [r.topic for r in records],
        [r.key for r in records],
        [r.value for r in records],
        [encode_headers(r.headers) for r in records],
    )


async def stage(conn: asyncpg.Connection, schema: str, records: Sequence[OutboxRecord]) -> None:
    """Stage `records` in the current transaction (nothing when there are none)."""
    if records:
        await conn.execute(stage_statement(schema), *stage_arguments(records))
