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
_NULL_LENGTH = _LENGTH.pack(_NULL)
# Header names repeat on every record (ce_id, ce_type...): their encoded form, and the name of
# an encoded one, are looked up rather than rebuilt. Bounded in count and length: names are
# client data too.
_HEADS: dict[str, bytes] = {}
_NAMES: dict[bytes, str] = {}
_CACHED, _CACHED_LENGTH = 256, 64


def encode_headers(headers: Headers) -> bytes:
    """`[(name, value)]` as `(>i len, name utf-8, >i len or -1 for null, value)*`."""
    parts = []
    for name, value in headers:
        head = _HEADS.get(name)
        if head is None:
            raw_name = name.encode(errors="surrogateescape")
            head = _LENGTH.pack(len(raw_name)) + raw_name
            if len(_HEADS) < _CACHED and len(raw_name) <= _CACHED_LENGTH:
                _HEADS[name] = head
        parts.append(head)
        if value is None:
            parts.append(_NULL_LENGTH)
        else:
            parts.append(_LENGTH.pack(len(value)))
            parts.append(value)
    return b"".join(parts)


def decode_headers(data: bytes) -> Headers:
    headers: Headers = []
    unpack = _LENGTH.unpack_from
    at, end = 0, len(data)
    while at < end:
        (size,) = unpack(data, at)
        raw_name = data[at + 4 : at + 4 + size]
        name = _NAMES.get(raw_name)
        if name is None:
            name = raw_name.decode(errors="surrogateescape")
            if len(_NAMES) < _CACHED and size <= _CACHED_LENGTH:
                _NAMES[raw_name] = name
        (size,) = unpack(data, at + 4 + size)
        at += 8 + len(raw_name)
        if size == _NULL:
            headers.append((name, None))
        else:
            headers.append((name, data[at : at + size]))
            at += size
    return headers


def stage_statement(schema: str, first: int = 1) -> str:
    """Insert a batch of records given as four arrays (topic, key, value, headers), the
    statement's parameters `first` to `first + 3`."""
    t, k, v, h = range(first, first + 4)
    return (
        f"INSERT INTO {schema}.outbox (topic, key, value, headers) "
        f"SELECT * FROM unnest(${t}::text[], ${k}::bytea[], ${v}::bytea[], ${h}::bytea[])"
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
