"""Consumed records as the kit sees them, and dead letters made from them.

Invariants:
1. A consumed record is kept exactly as it arrived (key, value and headers, including
   null and binary header values), so a dead letter is the original, verbatim.
2. A dead letter carries why in `dlq_*` headers: `dlq_reason` (one line, never client
   text), `dlq_code` (a short code, also the metrics label), the service and the source
   position. Original headers are kept except credentials (`authorization`, `ladder_signature`).
3. A record's `identity` is stable across redeliveries and replays of the same log, and
   differs for a record that reuses a position after the topic was recreated.
4. A dead letter names its source record's identity (`dlq_source_*`, timestamp included),
   so a redriven copy (`ladder dead-letters redrive`) says whose copy it is:
   `REDRIVE_OF` carries that identity, and a consumer that dedups by identity dedups the
   copy with the original (intake: commands without a command id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.envelope import Headers, format_time, name_based_id

REASON_MAX = 1000
# Credentials: a bearer key (refused on the commands topic, but a writer may still send one) and a
# command's signature, which a copy could replay within its window (shared.signing).
SECRET_HEADERS = frozenset({"authorization", "ladder_signature"})
_IDENTITY_NAMESPACE = uuid.UUID("0e7c6a63-5d8e-4a5b-9d0c-4f6b0a1d2e33")
REDRIVE_OF = "ladder_redrive_of"  # header of a redriven dead letter: the original record's identity


def identity_id(identity: str) -> str:
    """A record identity as a UUID, for tables keyed by id (cannot equal a real event id)."""
    return name_based_id(_IDENTITY_NAMESPACE, identity)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A consumed record, kept so it can be dead-lettered verbatim."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def identity(self) -> str:
        """Stable across redeliveries; differs for a record that reuses the position after
        the topic was recreated (its timestamp differs)."""
        return f"{self.position}@{self.timestamp_ms}"

    @property
    def identity_id(self) -> str:
        """`identity` as a UUID, for tables keyed by id (cannot equal a real event id)."""
        return identity_id(self.identity)

    @property
    def size(self) -> int:
        return (
            len(self.key or b"")
            + len(self.value or b"")
            + sum(len(name) + len(value or b"") for name, value in self.headers)
        )

    def header(self, name: str) -> bytes | None:
        """The last value of header `name` (case-insensitive), None when absent or null."""
        found = None
        for key, value in self.headers:
            if key == name or (not key.islower() and key.lower() == name):  # most names are lowercase already
                found = value
        return found


def source_record(record: Any) -> SourceRecord:
    """From aiokafka's `ConsumerRecord`."""
    return SourceRecord(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        record.value,
        list(record.headers or ()),
    )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is dead-lettered: `code` is short and bounded (a metrics label),
    `detail` one line for people; neither may contain client text."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A record to publish: staged in the outbox with the effects that caused it."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


def dead_letter(source: SourceRecord, rejection: Rejection, *, topic: str, service: str, at: datetime) -> OutboxRecord:
    kept: Headers = [(name, value) for name, value in source.headers if name.lower() not in SECRET_HEADERS]
    kept += [
        ("dlq_reason", rejection.detail[:REASON_MAX].encode()),
        ("dlq_code", rejection.code.encode()),
        ("dlq_service", service.encode()),
        ("dlq_source_topic", source.topic.encode()),
        ("dlq_source_partition", str(source.partition).encode()),
        ("dlq_source_offset", str(source.offset).encode()),
        ("dlq_source_timestamp", str(source.timestamp_ms).encode()),
        ("dlq_time", format_time(at).encode()),
    ]
    return OutboxRecord(topic, source.key, source.value, kept)
