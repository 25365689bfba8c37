"""The `support.ticket-commands` consumer: upstream systems that publish instead of POSTing.

Records arrive in batches; each becomes a valid command or a `Poison` entry, and the whole
batch is decided and stored in one transaction (`service.process`). Only then is the
offset committed (`AckPolicy.NACK_ON_ERROR`, see `shared.kafka`), so a crash re-delivers
the batch and the command ids make the re-run a no-op. A bad record never stops the
partition: it becomes a dead-letter record in the same transaction.

Writers authenticate on the topic too: an `authorization: Bearer <key>` header with a key
allowed to take the command's action (the same keys as the HTTP API).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from shared import topics
from shared.deadletter import SourceRecord
from shared.envelope import describe_validation_error, name_based_id
from shared.kafka import CONSUMER_ACK_POLICY, retrying
from services.intake.core.auth import Denied, KeyRing, permit
from services.intake.core.commands import KAFKA_COMMAND, CreateTicketRequest
from services.intake.core.tickets import Submission, command_id, new_ticket_id
from services.intake.service import Entry, FromTopic, Poison, record_fingerprint

_POSITION_NAMESPACE = uuid.UUID("0e7c6a63-5d8e-4a5b-9d0c-4f6b0a1d2e33")


def read_command(record: SourceRecord, keys: KeyRing, *, max_bytes: int, now: datetime) -> Entry:
    """Turn one record into a command, or into `Poison` with the reason. Pure."""
    position_id = name_based_id(_POSITION_NAMESPACE, record.identity)

    def poison(reason: str) -> Poison:
        return Poison(position_id, record, reason)

    if len(record.value) > max_bytes:
        return poison(f"too large: {len(record.value)} bytes > {max_bytes}")
    # Authenticate before reading the body: strangers learn nothing about the schema.
    authorization = next((value or b"" for name, value in record.headers if name.lower() == "authorization"), b"")
    key = keys.authenticate(authorization.decode(errors="replace"))
    if isinstance(key, Denied):
        return poison(f"unauthenticated: {key.reason}")
    try:
        payload = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        return poison("not JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return poison("not a command: expected a JSON object with a string field type")
    try:
        command = KAFKA_COMMAND.validate_python(payload)
    except ValidationError as error:
        return poison(f"invalid {payload['type'][:64]}: {describe_validation_error(error)}")
    allowed = permit(key, command.ACTION)
    if isinstance(allowed, Denied):
        return poison(f"forbidden: {allowed.reason}")

    if command.command_id is not None:  # same scoping as an HTTP Idempotency-Key
        command_key, same_record = command_id(key.name, idempotency_key=command.command_id), None
    else:  # the record's position is stable across redeliveries
        command_key, same_record = position_id, record_fingerprint(record)
    if isinstance(command, CreateTicketRequest):
        ticket_id = new_ticket_id(key.name, command, command_key)
    else:
        ticket_id = command.ticket_id  # type: ignore[union-attr]
    return FromTopic(Submission(command, ticket_id, command_key, key.name, now, record_fingerprint=same_record),
                     record)


def source_record(record: ConsumerRecord[Any, Any]) -> SourceRecord:
    return SourceRecord(record.topic, record.partition, record.offset, record.timestamp, record.key,
                        record.value or b"", list(record.headers or ()))


async def raw_records(message: Any) -> None:
    """Decoder: the handler reads `message.raw_message` itself (each record may be garbage),
    so FastStream's JSON decoding of every record would be wasted work."""
    return None


async def tolerant_batch_parser(records: tuple[ConsumerRecord[Any, Any], ...], original: Callable[..., Any]) -> Any:
    """FastStream's parser decodes every header as UTF-8 and would raise on a binary header,
    re-delivering the batch forever. Such headers are made printable for *parsing only*."""
    try:
        return await original(records)
    except UnicodeDecodeError:
        message = await original(tuple(
            dataclasses.replace(r, headers=[(n, v.decode(errors="replace").encode()) for n, v in r.headers])
            for r in records))
        message.raw_message = records
        return message


def register(broker: KafkaBroker, *, keys: KeyRing, process: Callable[[Sequence[Entry]], Awaitable[Any]],
             clock: Callable[[], datetime], group_id: str, batch_size: int, max_bytes: int,
             consumers: int) -> None:
    """`consumers` group members in this process: each owns some partitions and runs its
    own batches, so one decides while another waits for the database."""

    async def on_commands(message: KafkaMessage) -> None:
        now = clock()
        entries = [read_command(source_record(record), keys, max_bytes=max_bytes, now=now)
                   for record in message.raw_message]
        await retrying(lambda: process(entries), what="store command batch")

    for member in range(consumers):
        subscriber = broker.subscriber(
            topics.TICKET_COMMANDS, batch=True, max_records=batch_size, group_id=group_id,
            auto_offset_reset="earliest", ack_policy=CONSUMER_ACK_POLICY, parser=tolerant_batch_parser,
            decoder=raw_records, title=f"intake commands #{member + 1}",
            heartbeat_interval_ms=1000,  # members notice a rebalance within a second
            description="Upstream ticket commands (JSON with a `type`).",
        )
        subscriber(on_commands)
