"""The chaos suite's ledger: after the faults, what must still hold.

* every command intake accepted made exactly one event, by id (none lost, none doubled);
* every ticket on the stream was projected by the metrics service (its ticket.created is
  claimed in metrics' inbox);
* the KPIs /metrics exports equal the truth computed from the stream (simulator.compare);
* no consumer stalled: every group committed to the end of its topic, every outbox is
  empty, every service answers /readyz 200, no simulated ticket waited in vain;
* the dead-letter topic holds exactly the bad commands sent on purpose.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.intake.core.tickets import command_id
from shared.db import create_pool
from shared.kafka import client_options, topic_partitions
from shared.topics import Topics
from simulator.compare import StreamCopy, check
from simulator.driver import BAD_COMMANDS
from tests.chaos.traffic import Sent

API_KEY_NAME = "helpdesk"  # the name of the development key the driver uses (deploy/local/api-keys.json)


@dataclass
class Consumer:
    service: str
    group: str
    topic: str
    schema: str
    url: str


@dataclass
class Ledger:
    records: int = 0  # event records on the stream
    events: int = 0  # distinct event ids
    duplicate_records: int = 0  # a second record of the same id (the relay's at-least-once; consumers skip it)
    tickets: int = 0
    accepted: int = 0  # commands intake accepted (HTTP answers and topic commands that made an event)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    unprojected: list[str] = field(default_factory=list)
    kpi_differences: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    dead_letters: Counter[str] = field(default_factory=Counter)
    unexpected_dead_letters: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.unprojected
            or self.kpi_differences
            or self.stalls
            or self.unexpected_dead_letters
        )


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of `topic`, from the beginning to the end it had when asked."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_bytes=50 << 20, **client_options()
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=20000)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {name: (value or b"").decode(errors="replace") for name, value in record.headers}


def commands_and_events(ledger: Ledger, sent: Sent, records: Iterable[ConsumerRecord]) -> None:
    """Lost and doubled, by id. An accepted HTTP command names its event id; a topic command's
    event carries the command's id as its causation (intake derives both from the key)."""
    copies: Counter[str] = Counter()
    by_cause: dict[str, set[str]] = defaultdict(set)
    tickets: set[str] = set()
    for record in records:
        headers = _headers(record)
        event_id = headers.get("ce_id", "")
        copies[event_id] += 1
        if cause := headers.get("ce_causationid"):
            by_cause[cause].add(event_id)
        if headers.get("ce_type") == "ticket.created":
            tickets.add(headers.get("ce_subject", ""))
    ledger.records, ledger.events, ledger.tickets = sum(copies.values()), len(copies), len(tickets)
    ledger.duplicate_records = sum(n - 1 for n in copies.values())
    for key, event_id in sent.accepted.items():
        made = by_cause.get(command_id(API_KEY_NAME, idempotency_key=key), set())
        if event_id not in copies:
            ledger.lost.append(f"HTTP command {key}: accepted as event {event_id}, which is not on the stream")
        elif len(made) > 1:
            ledger.doubled.append(f"HTTP command {key}: {len(made)} events {sorted(made)}")
        ledger.accepted += 1
    for key in sent.published:
        made = by_cause.get(command_id(API_KEY_NAME, idempotency_key=key), set())
        if len(made) > 1:
            ledger.doubled.append(f"topic command {key}: {len(made)} events {sorted(made)}")
        elif not made:
            ledger.lost.append(f"topic command {key}: no event and no dead letter")
        ledger.accepted += bool(made)


def dead_letters(ledger: Ledger, sent: Sent, records: Iterable[ConsumerRecord], topics: Topics) -> None:
    """Only the bad commands sent on purpose may be dead letters, each with its code."""
    expected = Counter(code for _, _, _, code in BAD_COMMANDS)
    for record in records:
        headers = _headers(record)
        code = headers.get("dlq_code", "?")
        ledger.dead_letters[code] += 1
        if expected[code] > 0 and headers.get("dlq_source_topic") == topics.commands:
            expected[code] -= 1
            continue
        where = "{}[{}]@{}".format(*(headers.get(f"dlq_source_{part}") for part in ("topic", "partition", "offset")))
        ledger.unexpected_dead_letters.append(
            f"{headers.get('dlq_service')} dead-lettered {where}: {code} ({headers.get('dlq_reason')})"
        )
    ledger.unexpected_dead_letters += [f"no dead letter for the bad command coded {c}" for c in +expected]
    # a topic command that was dead-lettered is not lost: it was refused (and listed above)
    refused = {_command_key(r) for r in records} - {None}
    ledger.lost = [line for line in ledger.lost if not any(f"topic command {key}:" in line for key in refused)]


def _command_key(record: ConsumerRecord) -> str | None:
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return None
    return value.get("command_id") if isinstance(value, dict) else None


async def lags(bootstrap: str, consumers: list[Consumer]) -> dict[str, int]:
    """Records each group has yet to commit, summed over its topic's partitions (a partition
    it never committed counts from its start)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options())
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options())
    await admin.start()
    await probe.start()
    try:
        result = {}
        for consumer in consumers:
            partitions = await topic_partitions(bootstrap, consumer.topic)
            ends = await probe.end_offsets(partitions)
            committed: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(consumer.group)
            result[consumer.service] = sum(
                end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                for tp, end in ends.items()
            )
        return result
    finally:
        await probe.stop()
        await admin.close()


async def outboxes(database_url: str, consumers: list[Consumer]) -> dict[str, tuple[int, int]]:
    """(pending, quarantined) outbox records per service."""
    pool = await create_pool(database_url, timeout=10)
    try:
        async with pool.acquire() as connection:
            return {
                c.service: (
                    await connection.fetchval(f'SELECT count(*) FROM "{c.schema}".outbox'),
                    await connection.fetchval(f'SELECT count(*) FROM "{c.schema}".outbox_quarantine'),
                )
                for c in consumers
            }
    finally:
        await pool.close()


async def unready(consumers: list[Consumer]) -> list[str]:
    """The services whose /readyz is not 200, with its answer."""
    answers = []
    async with httpx.AsyncClient(timeout=10) as http:
        for consumer in consumers:
            try:
                response = await http.get(f"{consumer.url}/readyz")
            except httpx.HTTPError as error:
                answers.append(f"{consumer.service}: /readyz {type(error).__name__}")
                continue
            if response.status_code != 200:
                answers.append(f"{consumer.service}: /readyz {response.status_code} {response.text[:300]}")
    return answers


async def quiesce(bootstrap: str, database_url: str, consumers: list[Consumer], within_s: float) -> float:
    """Wait until every group is at the end of its topic, every outbox is empty and every
    service is ready; returns the seconds it took (or `within_s` if it never happened: the
    checks then say what is left)."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        try:
            lag = await lags(bootstrap, consumers)
            pending = await outboxes(database_url, consumers)
        except Exception:
            await asyncio.sleep(2)
            continue
        if not any(lag.values()) and not any(p for p, _ in pending.values()) and not await unready(consumers):
            return time.monotonic() - started
        await asyncio.sleep(2)
    return within_s


async def check_ledger(
    *,
    bootstrap: str,
    database_url: str,
    topics: Topics,
    consumers: list[Consumer],
    sent: Sent,
    stuck: int,
) -> Ledger:
    ledger = Ledger()
    events = await read_all(bootstrap, topics.events)
    commands_and_events(ledger, sent, events)
    dead_letters(ledger, sent, await read_all(bootstrap, topics.dead_letter), topics)

    metrics = next(c for c in consumers if c.service == "metrics")
    created = {
        _headers(r)["ce_id"]: _headers(r).get("ce_subject", "")
        for r in events
        if _headers(r).get("ce_type") == "ticket.created"
    }
    pool = await create_pool(database_url, timeout=10)
    try:
        async with pool.acquire() as connection:
            claimed = {
                row["event_id"]
                for row in await connection.fetch(
                    f'SELECT event_id FROM "{metrics.schema}".inbox WHERE event_id = ANY($1::text[])', list(created)
                )
            }
    finally:
        await pool.close()
    ledger.unprojected = [
        f"ticket {created[e]} (ticket.created {e}) not projected by metrics" for e in created if e not in claimed
    ]

    stream = StreamCopy(bootstrap, topics.events)
    try:
        ledger.kpi_differences, _ = await check(metrics.url, stream, within_s=60)
    finally:
        await stream.close()

    for service, lag in (await lags(bootstrap, consumers)).items():
        if lag:
            ledger.stalls.append(f"{service}: {lag} records not committed by its consumer group")
    for service, (pending, quarantined) in (await outboxes(database_url, consumers)).items():
        if pending or quarantined:
            ledger.stalls.append(f"{service}: outbox {pending} pending, {quarantined} quarantined")
    ledger.stalls += await unready(consumers)
    if stuck:
        ledger.stalls.append(f"{stuck} simulated tickets saw no progress for the driver's stall limit")
    if sent.unanswered:
        ledger.stalls.append(f"{len(sent.unanswered)} commands never answered, e.g. {sent.unanswered[:3]}")
    return ledger
