"""CloudEvents 1.0 in Kafka *binary* mode: attributes in `ce_*` headers, the event body as JSON.

Invariants:
1. The record key is the ticket id, so one ticket's history stays in one partition, in order.
2. `ce_id` is unique per event; an event caused by another gets a deterministic id derived
   from its cause (`derive_id`), so re-running the cause re-emits the *same* id and
   consumers can deduplicate.
3. `ce_correlationid` is the ticket's first event id; `ce_causationid` the direct cause.
   (CloudEvents extension names allow only lowercase letters and digits, hence no `_`.)
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.events import EVENT_TYPES, Event

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
_ID_NAMESPACE = uuid.UUID("8f0b7a8e-3c52-4d7e-9a53-5e0c0f6d1a11")

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record that is not a valid Ladder event; the message says why (for dead-lettering)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    event: Event
    id: str
    source: str
    time: datetime
    correlation_id: str
    causation_id: str | None = None

    @property
    def type(self) -> str:
        return self.event.TYPE

    @property
    def ticket_id(self) -> str:
        return self.event.ticket_id


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes | None
    value: bytes
    headers: Headers


def name_based_id(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))`, formatted without building a UUID object: ids
    are derived for every command and event, and UUID.__str__ showed up in profiles."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def derive_id(cause_id: str, purpose: str = "") -> str:
    """Deterministic event id for an event caused by `cause_id` (same cause, same id)."""
    return name_based_id(_ID_NAMESPACE, f"{cause_id}/{purpose}")


def new_id() -> str:
    return str(uuid.uuid4())


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(envelope: Envelope) -> KafkaRecord:
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_time", format_time(envelope.time).encode()),
        ("ce_subject", envelope.ticket_id.encode()),
        ("ce_correlationid", envelope.correlation_id.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if envelope.causation_id:
        headers.append(("ce_causationid", envelope.causation_id.encode()))
    return KafkaRecord(envelope.ticket_id.encode(), envelope.event.model_dump_json().encode(), headers)


def header_map(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as text. A header that is not UTF-8 is an envelope error, not a crash."""
    result: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            result[name] = (raw or b"").decode()
        except UnicodeDecodeError as error:
            raise EnvelopeError(f"header {name} is not UTF-8") from error
    return result


def decode(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None) -> Envelope:
    """Parse and validate one record. Raises `EnvelopeError` naming the offending header or field."""
    attrs = header_map(headers)
    for name in ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_correlationid"):
        if not attrs.get(name):
            raise EnvelopeError(f"missing header {name}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"ce_specversion {attrs['ce_specversion']!r} is not {SPEC_VERSION}")
    model = EVENT_TYPES.get(attrs["ce_type"])
    if model is None:
        raise EnvelopeError(f"unknown ce_type {attrs['ce_type']!r}")
    try:
        time = datetime.fromisoformat(attrs["ce_time"])
    except ValueError as error:
        raise EnvelopeError(f"ce_time is not an RFC 3339 timestamp: {attrs['ce_time']!r}") from error
    if time.tzinfo is None:
        raise EnvelopeError("ce_time has no timezone offset")
    try:
        event = model.model_validate_json(value or b"")
    except ValidationError as error:
        raise EnvelopeError(f"invalid {attrs['ce_type']} body: {describe_validation_error(error)}") from error
    if key is None or key.decode(errors="replace") != event.ticket_id:
        raise EnvelopeError("record key does not match body ticket_id")
    return Envelope(
        event=event,
        id=attrs["ce_id"],
        source=attrs["ce_source"],
        time=time,
        correlation_id=attrs["ce_correlationid"],
        causation_id=attrs.get("ce_causationid") or None,
    )


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every invalid field, e.g. `priority: Input should be 'P1', ...; subject: Field required`."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
