"""CloudEvents 1.0 in Kafka *binary* mode: attributes in `ce_*` headers, the event body as JSON.

Invariants:
1. The record key is the ticket id, so one ticket's history stays in one partition, in order.
2. `ce_id` is unique per event; an event caused by another gets a deterministic id derived
   from its cause (`derive_id`), so re-running the cause re-emits the *same* id and
   consumers can deduplicate.
3. `ce_correlationid` is the ticket's first event id; `ce_causationid` the direct cause.
   (CloudEvents extension names allow only lowercase letters and digits, hence no `_`.)
4. `ce_cycle` is the ticket's cycle the event belongs to (docs/architecture/delivery.md, invariant 7): 1 from
   `ticket.created`, and each `ticket.reopened` carries the number of the cycle it starts;
   an event caused by another carries its cause's cycle. A value that is not a plain
   positive integer makes the record invalid; an absent one (records written before cycles
   existed) is *unknown*, and the staleness rule takes it as the ticket's current cycle.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from shared.events import EVENT_TYPES, Event

SPEC_VERSION = "1.0"
ID_MAX = 200
CYCLE_MAX = 2**31 - 1  # stored as a PostgreSQL integer
CONTENT_TYPE = "application/json"
_ID_NAMESPACE = uuid.UUID("8f0b7a8e-3c52-4d7e-9a53-5e0c0f6d1a11")

Headers = list[tuple[str, bytes | None]]  # Kafka header values may be null


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
    cycle: int | None = None  # None: unknown (no ce_cycle header)
    client: str | None = None  # the upstream client that acted (ce_client)
    agent: str | None = None  # the agent the command named (ce_agent)

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
    if envelope.cycle is not None:
        headers.append(("ce_cycle", str(envelope.cycle).encode()))
    if envelope.client is not None:
        headers.append(("ce_client", envelope.client.encode()))
    if envelope.agent is not None:
        headers.append(("ce_agent", envelope.agent.encode()))
    return KafkaRecord(envelope.ticket_id.encode(), envelope.event.model_dump_json().encode(), headers)


_ATTRIBUTES = frozenset(
    {
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_time",
        "ce_subject",
        "ce_correlationid",
        "ce_causationid",
        "ce_cycle",
        "ce_client",
        "ce_agent",
    }
)


def header_map(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """The CloudEvents attributes as text (other headers are not ours to judge: tracing
    headers may be binary). An attribute that is not UTF-8 is an envelope error, not a crash."""
    result: dict[str, str] = {}
    for name, raw in headers or ():
        if name not in _ATTRIBUTES:
            continue
        try:
            result[name] = (raw or b"").decode()
        except UnicodeDecodeError as error:
            raise EnvelopeError(f"header {name} is not UTF-8") from error
    return result


def decode(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None) -> Envelope:
    """Parse and validate one record. Raises `EnvelopeError` naming the offending header or field."""
    return decode_attributes(header_map(headers), key, value)


def decode_attributes(attrs: Mapping[str, str], key: bytes | None, value: bytes | None) -> Envelope:
    """`decode`, for a record whose headers `header_map` has read already."""
    for name in ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_correlationid"):
        if not attrs.get(name):
            raise EnvelopeError(f"missing header {name}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"ce_specversion is not {SPEC_VERSION}")
    model = EVENT_TYPES.get(attrs["ce_type"])
    if model is None:
        raise EnvelopeError("unknown ce_type (not in the event catalogue)")
    if len(attrs["ce_id"]) > ID_MAX:
        raise EnvelopeError(f"ce_id longer than {ID_MAX} characters")
    try:
        time = datetime.fromisoformat(attrs["ce_time"])
    except ValueError as error:
        raise EnvelopeError("ce_time is not an RFC 3339 timestamp") from error
    if time.tzinfo is None:
        raise EnvelopeError("ce_time has no timezone offset")
    try:
        event = model.model_validate_json(value or b"")
    except ValidationError as error:
        raise EnvelopeError(
            f"invalid {attrs['ce_type']} body: {describe_validation_error(error, EVENT_FIELDS)}"
        ) from error
    if key is None or key.decode(errors="replace") != event.ticket_id:
        raise EnvelopeError("record key does not match body ticket_id")
    cycle = attrs.get("ce_cycle")
    if cycle is not None and not valid_cycle(cycle):
        raise EnvelopeError(f"ce_cycle is not an integer from 1 to {CYCLE_MAX}")
    return Envelope(
        event=event,
        id=attrs["ce_id"],
        source=attrs["ce_source"],
        time=time,
        correlation_id=attrs["ce_correlationid"],
        causation_id=attrs.get("ce_causationid") or None,
        cycle=None if cycle is None else int(cycle),
        client=attrs.get("ce_client") or None,
        agent=attrs.get("ce_agent") or None,
    )


def valid_cycle(text: str) -> bool:
    """Digits only, no sign, no leading zero, no blanks, within 1..CYCLE_MAX."""
    return text.isascii() and text.isdigit() and text[0] != "0" and len(text) <= 10 and int(text) <= CYCLE_MAX


def field_names(*models: type[BaseModel]) -> frozenset[str]:
    """Every field name of `models` and of the models they nest: what an error may quote."""
    names: set[str] = set()
    pending: list[Any] = list(models)
    while pending:
        model = pending.pop()
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, info in model.model_fields.items():
                names.add(name)
                pending += [info.annotation, *get_args(info.annotation)]
        else:
            pending += list(get_args(model))
    return frozenset(names)


EVENT_FIELDS = field_names(*EVENT_TYPES.values())
# Error types whose message quotes the input; said here in words of our own instead.
_OWN_WORDS = {
    "union_tag_invalid": "unknown type",
    "union_tag_not_found": "a type is required",
    "extra_forbidden": "unexpected field (not in the schema)",
}


def describe_validation_error(error: ValidationError, known: frozenset[str] = frozenset()) -> str:
    """One line naming every invalid field, e.g. `priority: Input should be 'P1', ...; subject:
    Field required`. Never client text: a location part that is not a field name of the
    schema (`known`), e.g. an unexpected key, shows as `?`."""
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) if isinstance(part, int) or part in known else "?" for part in item["loc"])
        parts.append(f"{where or 'body'}: {_OWN_WORDS.get(item['type'], item['msg'])}")
    return "; ".join(parts)
