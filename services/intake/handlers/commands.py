"""The `support.ticket-commands` consumer: upstream systems that publish instead of POSTing.

Records arrive in batches; each becomes a valid command or a `Poison` entry, and the whole
batch is decided and stored in one transaction (`service.process`). Only then is the
offset committed (`AckPolicy.NACK_ON_ERROR`, see `shared.kafka`), so a crash re-delivers
the batch and the command ids make the re-run a no-op. A bad record never stops the
partition: it becomes a dead-letter record in the same transaction.

Writers authenticate on the topic by signing each record (`shared.signing`: client,
timestamp and HMAC-SHA256 headers), with a key allowed to take the command's action (the
same keys as the HTTP API); no secret is ever in a record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from services.intake.core.auth import Denied, KeyRing, permit
from services.intake.core.commands import COMMAND_FIELDS, KAFKA_COMMAND, KAFKA_COMMAND_TYPES, CreateTicketRequest
from services.intake.core.tickets import Submission, command_id, new_ticket_id
from services.intake.service import Entry, FromTopic, Poison, record_fingerprint
from shared import signing
from shared.delivery.records import REDRIVE_OF, Rejection, SourceRecord, identity_id
from shared.envelope import describe_validation_error


def read_command(record: SourceRecord, keys: KeyRing, *, max_bytes: int, now: datetime) -> FromTopic | Poison:
    """Turn one record into a command, or into `Poison` with the reason. Pure."""
    position_id = record.identity_id

    def poison(code: str, detail: str) -> Poison:
        return Poison(position_id, record, Rejection(code, detail))

    if record.size > max_bytes:  # key and headers count too: a 2 MB key is no command
        return poison("too_large", f"too large: {record.size} bytes > {max_bytes}")
    # Authenticate before reading the body: strangers learn nothing about the schema.
    key = keys.verify(record.headers, record.key, record.value, now)
    if isinstance(key, Denied):
        return poison("unauthenticated", f"unauthenticated: {key.reason}")
    try:
        payload = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return poison("not_json", "not JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return poison("not_a_command", "not a command: expected a JSON object with a string field type")
    if payload["type"] not in KAFKA_COMMAND_TYPES:  # never echo what a client sent
        return poison("unknown_command", f"unknown command type; expected one of {', '.join(KAFKA_COMMAND_TYPES)}")
    try:
        command = KAFKA_COMMAND.validate_python(payload)
    except ValidationError as error:
        return poison(
            "invalid_command", f"invalid {payload['type']}: {describe_validation_error(error, COMMAND_FIELDS)}"
        )
    allowed = permit(key, command.ACTION)
    if isinstance(allowed, Denied):
        return poison("forbidden", f"forbidden: {allowed.reason}")

    redrive_of = record.header(REDRIVE_OF)
    if command.command_id is not None:  # same scoping as an HTTP Idempotency-Key
        command_key, same_record = command_id(key.name, idempotency_key=command.command_id), None
    elif redrive_of is not None:  # a redriven dead letter is the record it copies (same bytes, checked)
        command_key, same_record = identity_id(redrive_of.decode(errors="replace")), record_fingerprint(record)
    else:  # the signature is stable across redeliveries, and a replayed copy is the same command
        signed = (record.header(signing.SIGNATURE) or b"").decode(errors="replace")
        command_key, same_record = identity_id(f"signed/{key.name}/{signed}"), record_fingerprint(record)
    if isinstance(command, CreateTicketRequest):
        ticket_id = new_ticket_id(key.name, command, command_key)
    else:
        ticket_id = command.ticket_id
    submission = Submission(
        command,
        ticket_id,
        command_key,
        key.name,
        now,
        record_fingerprint=same_record,
        redrive=redrive_of is not None,
        all_tickets=key.tickets == "all",
    )
    return FromTopic(submission, record)


def batch_processor(
    keys: Callable[[], KeyRing],
    *,
    process: Callable[[Sequence[Entry]], Awaitable[Any]],
    clock: Callable[[], datetime],
    max_bytes: int,
) -> Callable[[Sequence[SourceRecord]], Awaitable[None]]:
    """What the kit's consumer runs for each batch of command records."""

    async def on_commands(records: Sequence[SourceRecord]) -> None:
        now = clock()
        ring = keys()  # the ring in force for this batch (it may be reloaded between batches)
        await process([read_command(record, ring, max_bytes=max_bytes, now=now) for record in records])

    return on_commands
