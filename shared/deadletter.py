"""Dead-letter records: a rejected input kept verbatim on `support.dead-letter`, with why.

Invariants:
1. The original key and value bytes are kept unchanged, so the input can be replayed.
2. The reason and the source position travel in `dlq_*` headers; original headers are
   kept except credentials (`authorization`), which never leave the service that read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.envelope import Headers, KafkaRecord, format_time

REASON_MAX = 1000
_SECRET_HEADERS = {"authorization"}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A consumed record, kept so it can be dead-lettered verbatim."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Headers

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def identity(self) -> str:
        """Stable across redeliveries of this record; differs for a record that reuses the
        position after the topic was recreated (its timestamp differs)."""
        return f"{self.position}@{self.timestamp_ms}"


def dead_letter(source: SourceRecord, reason: str, *, service: str, at: datetime) -> KafkaRecord:
    kept = [(name, value) for name, value in source.headers if name.lower() not in _SECRET_HEADERS]
    kept += [
        ("dlq_reason", reason[:REASON_MAX].encode()),
        ("dlq_service", service.encode()),
        ("dlq_source_topic", source.topic.encode()),
        ("dlq_source_partition", str(source.partition).encode()),
        ("dlq_source_offset", str(source.offset).encode()),
        ("dlq_time", format_time(at).encode()),
    ]
    return KafkaRecord(source.key, source.value, kept)
