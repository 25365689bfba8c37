"""`ladder dead-letters list|show|redrive`: the records on `support.dead-letter`, by service,
reason and time; one in full; chosen ones sent back to their source topic once their cause
is fixed.

A redriven record is the original (key, value, headers without the `dlq_*` ones) plus
`ladder_redrive_of` naming the original record's identity, so it takes effect once however
often it is redriven: events are deduplicated by event id (every consumer's inbox), commands
by command id, or, without one, by the original record's identity (intake); a command whose
first outcome was a dead letter is decided again, once. Commands need a key to be read
(dead letters drop credentials): `--api-key-env` names the variable holding the key of the
client that sent them (the command's identity is scoped by client).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared import signing
from shared.delivery.records import REDRIVE_OF
from shared.envelope import Headers
from shared.kafka import client_options, topic_partitions
from shared.partitioning import partition_for
from shared.settings import LadderSettings, load

HELP = "list, show and redrive dead letters (records on support.dead-letter)"
DLQ_PREFIX = "dlq_"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def id(self) -> str:
        """Where it is on the dead-letter topic: `partition:offset`."""
        return f"{self.partition}:{self.offset}"

    def dlq(self, name: str) -> str:
        for header, value in reversed(self.headers):
            if header == DLQ_PREFIX + name and value is not None:
                return value.decode(errors="replace")
        return ""

    @property
    def time(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.dlq("time").replace("Z", "+00:00"))
        except ValueError:
            return None

    @property
    def source_identity(self) -> str:
        """The original record's identity (`SourceRecord.identity`)."""
        return (
            f"{self.dlq('source_topic')}/{self.dlq('source_partition')}/{self.dlq('source_offset')}"
            f"@{self.dlq('source_timestamp')}"
        )

    def redriven(
        self, signer: tuple[str, str] | None, now: float | None = None
    ) -> tuple[str, bytes | None, bytes | None, Headers]:
        """(topic, key, value, headers) of the copy sent back, signed anew by `signer` (client,
        API key) when given (commands: intake reads only signed ones). Pure but for the clock."""
        # A redrive dead-lettered again names the first original still: that is what intake dedups by.
        first = next((v for n, v in self.headers if n == REDRIVE_OF and v is not None), None)
        dropped = {REDRIVE_OF, signing.CLIENT, signing.TIMESTAMP, signing.SIGNATURE}
        headers: Headers = [(n, v) for n, v in self.headers if not n.startswith(DLQ_PREFIX) and n not in dropped]
        headers.append((REDRIVE_OF, first or self.source_identity.encode()))
        if signer is not None:
            headers += signing.sign(*signer, self.key, self.value, now=now)
        return self.dlq("source_topic"), self.key, self.value, headers


def select(
    letters: Iterable[DeadLetter],
    *,
    service: str | None = None,
    code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    ids: Sequence[str] = (),
) -> list[DeadLetter]:
    """The dead letters matching every filter given. Pure."""
    chosen = []
    for letter in letters:
        at = letter.time
        if service is not None and letter.dlq("service") != service:
            continue
        if code is not None and letter.dlq("code") != code:
            continue
        if since is not None and (at is None or at < since):
            continue
        if until is not None and (at is None or at >= until):
            continue
        if ids and letter.id not in ids:
            continue
        chosen.append(letter)
    return chosen


def needs_key(letters: Iterable[DeadLetter], commands_topic: str) -> bool:
    return any(letter.dlq("source_topic") == commands_topic for letter in letters)


async def read_all(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every record on `topic` now (up to its end offsets when called)."""
    partitions = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options())
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        letters.append(
                            DeadLetter(record.partition, record.offset, record.key, record.value, list(record.headers))
                        )
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return sorted(letters, key=lambda letter: (letter.time is None, letter.time, letter.partition, letter.offset))


async def redrive(bootstrap: str, letters: Sequence[DeadLetter], signer: tuple[str, str] | None) -> int:
    """Send `letters` back to their source topics (keyed records to the key's partition, as
    every Ladder producer does); returns how many the broker acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **client_options())
    await producer.start()
    partitions: dict[str, int] = {}
    try:
        for letter in letters:
            topic, key, value, headers = letter.redriven(signer)
            if topic not in partitions:
                partitions[topic] = len(await topic_partitions(bootstrap, topic))
            partition = partition_for(key, partitions[topic]) if key is not None else None
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=partition)
    finally:
        await producer.stop()
    return len(letters)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    for name, help_text in (
        ("list", "one line per dead letter: id, time, service, code, source, reason"),
        ("show", "dead letters in full (headers, key, value)"),
        ("redrive", "send dead letters back to their source topic"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--service", help="only those dead-lettered by this service (intake, router, ...)")
        action.add_argument("--code", help="only this dlq_code (unknown_ticket, invalid_event, unprocessable, ...)")
        action.add_argument("--since", type=datetime.fromisoformat, help="dead-lettered at or after (ISO 8601)")
        action.add_argument("--until", type=datetime.fromisoformat, help="dead-lettered before (ISO 8601)")
        action.add_argument("ids", nargs="*", help="dead letters by id (partition:offset, as `list` prints)")
        if name == "redrive":
            action.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
            action.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            action.add_argument(
                "--api-key-env",
                default="LADDER_REDRIVE_API_KEY",
                help="variable holding the API key commands are signed with (default LADDER_REDRIVE_API_KEY)",
            )
            action.add_argument(
                "--client-env",
                default="LADDER_REDRIVE_CLIENT",
                help="variable holding that key's client name (default LADDER_REDRIVE_CLIENT)",
            )


def run(args: argparse.Namespace) -> int:
    settings = load(LadderSettings)
    topics = settings.topics
    letters = select(
        asyncio.run(read_all(settings.kafka_bootstrap_servers, topics.dead_letter)),
        service=args.service,
        code=args.code,
        since=args.since,
        until=args.until,
        ids=args.ids,
    )
    if args.action == "list":
        for letter in letters:
            print(
                f"{letter.id}\t{letter.dlq('time')}\t{letter.dlq('service')}\t{letter.dlq('code')}\t"
                f"{letter.dlq('source_topic')}\t{letter.dlq('reason')}"
            )
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
        return 0
    if args.action == "show":
        for letter in letters:
            print(f"== {letter.id}")
            for name, value in letter.headers:
                print(f"  {name}: {_text(value)}")
            print(f"  key: {_text(letter.key)}\n  value: {_text(letter.value)}")
        return 0
    if not letters:
        print("nothing to redrive", file=sys.stderr)
        return 1
    key, client = os.environ.get(args.api_key_env), os.environ.get(args.client_env)
    if needs_key(letters, topics.commands) and not (key and client):
        print(
            f"commands are read again only when signed: set {args.api_key_env} and {args.client_env}", file=sys.stderr
        )
        return 2
    by_topic: dict[str, int] = {}
    for letter in letters:
        by_topic[letter.dlq("source_topic")] = by_topic.get(letter.dlq("source_topic"), 0) + 1
    summary = ", ".join(f"{count} to {topic}" for topic, count in by_topic.items())
    if args.dry_run:
        for letter in letters:
            print(f"would redrive {letter.id} ({letter.dlq('code')}) to {letter.dlq('source_topic')}")
        print(f"dry run: {len(letters)} dead letter(s), {summary}; nothing sent")
        return 0
    if not args.yes and input(f"redrive {len(letters)} dead letter(s): {summary}? [y/N] ").strip().lower() != "y":
        print("nothing sent")
        return 1
    signer = (client, key) if key and client else None
    sent = asyncio.run(redrive(settings.kafka_bootstrap_servers, letters, signer))
    print(f"redriven: {sent} ({summary})")
    return 0


def _text(value: bytes | None) -> str:
    if value is None:
        return "(null)"
    try:
        return value.decode()
    except UnicodeDecodeError:
        return f"0x{value.hex()}"
