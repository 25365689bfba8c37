"""The outbox relay: publishes committed outbox records to Kafka, then deletes them.

Invariants (tests: tests/integration/kit/test_relay.py):
1. A record is deleted only after the broker acknowledged it (`acks=all`). A crash in
   between publishes it again with the same event id; consumers deduplicate by id.
2. One relay per service schema publishes: the leader holds a session advisory lock in the
   kit's internal key space (`locks.internal_key`), on its own connection; standbys retry
   the lock and take over within a poll interval when the leader dies.
3. One ticket's records leave in the order their transactions committed: a ticket's
   transactions are serialised by its lock, so their `seq` values rise with commit order;
   records go out in `seq` order per partition, one batch in flight per partition, and a
   partition stops at its first failure in a pass. Records of different tickets may leave
   in any order (a transaction with a lower `seq` can commit after one with a higher).
4. A record the broker refuses for good (too large, invalid) is moved to
   `outbox_quarantine` with the reason and counted; the records behind it go on. After
   any non-retriable error the producer is rebuilt (an idempotent producer's sequence
   state is suspect after a refused batch).
5. Records for a topic the broker does not know (deleted, not created yet, or another
   deployment's sharing the schema by mistake) wait in the outbox, skipped by each pass for
   `hold` seconds at a time; the other topics' records go on, and the relay reports
   unhealthy once records have waited so for 30 s. Nothing is dropped: once the topic
   exists they go, in order.
6. `wake()` after each commit keeps latency low; polling covers rows committed by other
   replicas and rows left by a crash. A pass runs when a commit woke the relay since the
   last one began, or to poll: a pass after a quiet spell finds nothing (that was an empty
   read after most consumer batches). A pass that found a partial batch waits `linger`
   before the next, so under load each pass carries many records.
7. The leader VACUUMs the outbox after every `vacuum_after` deleted rows (at most once a
   second). Each pass reads the head of the `seq` index, and every row published since the
   last vacuum is a dead entry there, and autovacuum visits a database about once a minute
   (at 500 lifecycles/s intake's pass was then an eighth of PostgreSQL's statement time).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from shared.db import connect_options
from shared.delivery.failures import describe, is_transient
from shared.delivery.locks import internal_key
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.outbox import decode_headers
from shared.kafka import client_options
from shared.partitioning import partition_for
from shared.settings import KafkaSecurity

log = logging.getLogger(__name__)

# The broker's answers that mean "this record will never be accepted".
REFUSALS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    PolicyViolationError,
)
_UNHEALTHY_AFTER_S = 30.0
# A ticket's records come in runs (one per event it causes): its partition is looked up, not
# rehashed. Only short keys are kept (a dead letter may carry a client's huge key).
_cached_partition = functools.lru_cache(maxsize=65536)(partition_for)


def _partition(key: bytes, partitions: int) -> int:
    return _cached_partition(key, partitions) if len(key) <= 200 else partition_for(key, partitions)


_METADATA_WAIT_S = 2.0  # to learn a topic's partitions before holding its records back


@dataclass
class _PartitionResult:
    delivered: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    error: BaseException | None = None


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        schema: str,
        database_url: str,
        bootstrap_servers: str,
        metrics: DeliveryMetrics,
        security: KafkaSecurity | None = None,
        batch_size: int = 2000,
        poll_interval: float = 0.25,
        linger: float = 0.01,
        max_batch_bytes: int = 512 * 1024,
        hold: float = 10.0,
        vacuum_after: int = 10_000,
    ) -> None:
        self._service = service
        self._schema = schema
        self._database_url = database_url
        self._bootstrap_servers = bootstrap_servers
        self._kafka_options = client_options(security)  # the environment's when not given
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._linger = linger
        self._max_batch_bytes = max_batch_bytes
        self._hold = hold
        self._vacuum_after = vacuum_after
        self._deleted = 0  # rows deleted since the last VACUUM
        self._vacuumed_at = 0.0
        self._held: dict[str, float] = {}  # topic without partitions -> until when its records wait
        self._held_since: float | None = None  # since when some records have waited so
        self._lock_key = internal_key(f"relay:{schema}")
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._suspects: set[int] = set()  # rows of a refused multi-record batch: sent one by one next
        self._failing_since: float | None = None
        self._stats_at = 0.0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self._new_producer()
        self._task = asyncio.create_task(self._run(), name=f"{self._service}-outbox-relay")

    def wake(self) -> None:
        self._wakeup.set()

    def healthy(self) -> bool:
        """Running, and not failing for longer than a short outage."""
        if self._task is None or self._task.done():
            return False
        since = min(filter(None, (self._failing_since, self._held_since)), default=None)
        return since is None or time.monotonic() - since < _UNHEALTHY_AFTER_S

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Publish what is committed (up to `drain_timeout`), then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), drain_timeout)
            except TimeoutError:
                log.error("outbox not drained before shutdown; the next start publishes the rest")
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()

    async def _new_producer(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=f"ladder-{self._service}-relay",
            acks="all",
            enable_idempotence=True,
            max_batch_size=self._max_batch_bytes,
            **self._kafka_options,
        )
        await self._producer.start()
        self._partitions.clear()

    async def _run(self) -> None:
        pause = 0.2
        while True:
            try:
                await self._lead()
                return
            except Exception as error:  # the relay never dies: it waits and tries again
                self._metrics.relay_errors.labels(
                    "database"
                    if isinstance(error, (asyncpg.PostgresError, asyncpg.InterfaceError))
                    else "broker"
                    if isinstance(error, KafkaError)
                    else "other"
                ).inc()
                if is_transient(error):
                    log.warning(
                        "outbox relay interrupted, retrying", extra={"error": describe(error), "pause_s": pause}
                    )
                else:
                    log.exception("outbox relay failed, retrying", extra={"error": describe(error)})
                if self._stopping:
                    return
            self._failing_since = self._failing_since or time.monotonic()
            self._metrics.relay_leader.set(0)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self._database_url, **connect_options(self._database_url))
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *self._lock_key):
                self._failing_since = None
                await self._measure(conn)
                if self._stopping:
                    return
                await self._sleep()
            self._metrics.relay_leader.set(1)
            while True:
                published = await self._pass(conn)
                self._failing_since = None
                await self._measure(conn)
                await self._vacuum(conn, published)
                if published == self._batch_size:
                    continue
                if self._stopping and not published:
                    return
                if published:
                    await asyncio.sleep(self._linger)  # let the next pass carry more
                await self._sleep()
        finally:
            self._metrics.relay_leader.set(0)
            await conn.close()  # also releases the leader lock

    async def _sleep(self) -> None:
        if self._stopping:
            return  # draining: pass after pass until nothing is left
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
        self._wakeup.clear()

    async def _vacuum(self, conn: asyncpg.Connection, deleted: int) -> None:
        """Invariant 7. VACUUM takes no lock that blocks writers or readers of the table."""
        self._deleted += deleted
        if self._deleted < self._vacuum_after or time.monotonic() - self._vacuumed_at < 1.0:
            return
        await conn.execute(f"VACUUM {self._schema}.outbox")
        self._deleted, self._vacuumed_at = 0, time.monotonic()

    async def _measure(self, conn: asyncpg.Connection) -> None:
        """Outbox depth and oldest age, at most once a second, from the two ends of the `seq`
        index (a count would scan the backlog exactly when it is large). The depth is the
        span of `seq`: exact but for rows of that span not yet committed."""
        if time.monotonic() - self._stats_at < 1.0:
            return
        self._stats_at = time.monotonic()
        row = await conn.fetchrow(
            f"SELECT (SELECT max(seq) FROM {self._schema}.outbox) - seq + 1 AS n, "
            f"extract(epoch FROM now() - created_at) AS age FROM {self._schema}.outbox ORDER BY seq LIMIT 1"
        )
        self._metrics.outbox_pending.set(row["n"] if row else 0)
        self._metrics.outbox_oldest_age.set(float(row["age"]) if row else 0.0)

    # --- one pass -------------------------------------------------------------------------

    async def _pass(self, conn: asyncpg.Connection) -> int:
        now = time.monotonic()
        self._held = {topic: until for topic, until in self._held.items() if until > now}
        rows = await conn.fetch(
            f"SELECT seq, topic, key, value, headers FROM {self._schema}.outbox WHERE topic <> ALL($2::text[]) "
            "ORDER BY seq LIMIT $1",
            self._batch_size,
            list(self._held),
        )
        groups = await self._by_partition(rows)
        if not self._held and len(rows) < self._batch_size:
            self._held_since = None  # the whole outbox was seen, and no record waits
        if not rows:
            return 0
        results = await asyncio.gather(
            *(self._deliver(topic, partition, group) for (topic, partition), group in groups.items())
        )
        delivered = [seq for result in results for seq in result.delivered]
        refused = [item for result in results for item in result.refused]
        # One statement, atomic without a transaction of its own (BEGIN and COMMIT were two
        # more round trips per pass): the delivered rows go, the refused move to quarantine.
        await conn.execute(
            f"WITH moved AS (DELETE FROM {self._schema}.outbox WHERE seq = ANY($2::bigint[]) RETURNING *), "
            f"parked AS (INSERT INTO {self._schema}.outbox_quarantine "
            "(seq, topic, key, value, headers, created_at, reason) "
            "SELECT m.seq, m.topic, m.key, m.value, m.headers, m.created_at, r.reason "
            "FROM moved m JOIN unnest($2::bigint[], $3::text[]) AS r(seq, reason) USING (seq)) "
            f"DELETE FROM {self._schema}.outbox WHERE seq = ANY($1::bigint[])",
            delivered,
            [seq for seq, _ in refused],
            [reason for _, reason in refused],
        )
        by_seq = {row["seq"]: row["topic"] for row in rows}
        for topic, count in Counter(by_seq[seq] for seq in delivered).items():
            self._metrics.outbox_published.labels(topic).inc(count)
        for seq, reason in refused:
            self._metrics.outbox_quarantined.inc()
            log.error(
                "broker refused an outbox record; quarantined",
                extra={"seq": seq, "topic": by_seq[seq], "reason": reason},
            )
        errors = [result.error for result in results if result.error is not None]
        if any(not is_transient(error) for error in errors):
            await self._new_producer()  # the sequence state of an idempotent producer is suspect now
        transient = [error for error in errors if is_transient(error)]
        if transient:
            raise transient[0]  # back off; what was delivered is already deleted
        return len(delivered) + len(refused)

    async def _by_partition(self, rows: list[asyncpg.Record]) -> dict[tuple[str, int], list[asyncpg.Record]]:
        """Rows grouped by destination partition, in `seq` order within each (the partition
        every producer computes for the key: `shared.partitioning`). Rows for a topic
        without partitions are left out, and the topic held (invariant 5)."""
        known = {topic: await self._partitions_of(topic) for topic in {row["topic"] for row in rows}}
        groups: dict[tuple[str, int], list[asyncpg.Record]] = {}
        for row in rows:
            topic, key = row["topic"], row["key"]
            partitions = known[topic]
            if partitions is None:
                continue
            partition = random.choice(partitions) if key is None else partitions[_partition(key, len(partitions))]
            groups.setdefault((topic, partition), []).append(row)
        return groups

    async def _partitions_of(self, topic: str) -> list[int] | None:
        """The topic's partitions, or None if the broker does not know it: the topic is then
        held, so its records wait `hold` seconds without costing later passes a lookup."""
        assert self._producer is not None
        if topic in self._held:
            return None
        if topic not in self._partitions:
            try:
                found = await asyncio.wait_for(self._producer.partitions_for(topic), _METADATA_WAIT_S)
            except (TimeoutError, KafkaError) as error:
                log.error(
                    "outbox records wait: their topic has no partitions",
                    extra={"topic": topic, "error": describe(error), "retry_in_s": self._hold},
                )
                self._held[topic] = time.monotonic() + self._hold
                self._held_since = self._held_since or time.monotonic()
                self._metrics.relay_errors.labels("broker").inc()
                return None
            self._partitions[topic] = sorted(found)
        return self._partitions[topic]

    async def _deliver(self, topic: str, partition: int, rows: Sequence[asyncpg.Record]) -> _PartitionResult:
        """Send `rows` in order, as full batches, one in flight; stop at the first failure.
        A suspect row travels alone, so a refusal names exactly one record."""
        assert self._producer is not None
        result = _PartitionResult()
        at = 0
        while at < len(rows):
            batch, batch_rows = self._producer.create_batch(), list[asyncpg.Record]()
            while at < len(rows):
                row = rows[at]
                alone = row["seq"] in self._suspects
                if alone and batch_rows:
                    break
                # a full batch answers None; the first record always fits, whatever its size
                if (
                    batch.append(
                        key=row["key"], value=row["value"], timestamp=None, headers=decode_headers(row["headers"])
                    )
                    is None
                ):
                    break
                batch_rows.append(row)
                at += 1
                if alone:
                    break
            try:
                await (await self._producer.send_batch(batch, topic, partition=partition))
            except Exception as error:
                result.error = error
                if isinstance(error, REFUSALS):
                    if len(batch_rows) == 1:
                        result.refused.append((batch_rows[0]["seq"], describe(error)))
                    else:
                        self._suspects.update(row["seq"] for row in batch_rows)
                break
            result.delivered += [row["seq"] for row in batch_rows]
        self._suspects.difference_update(result.delivered)
        self._suspects.difference_update(seq for seq, _ in result.refused)
        return result
