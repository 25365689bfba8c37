"""The batch consumer every service uses: nothing parsed by the framework, nothing lost,
nothing looping.

Invariants (tests: tests/integration/kit/test_consumer.py):
1. The offset is committed only after `process` returned, i.e. after the batch's effects
   are durable (`AckPolicy.NACK_ON_ERROR`, auto-commit off). A crash redelivers the batch;
   `process` must make a re-run change nothing (dedup by id).
2. The framework never parses a record: FastStream's parser decodes every header as UTF-8
   and fails the whole batch on a null or binary value, so it is given header-less copies
   and the handler reads the raw records. Every record reaches `process` verbatim.
3. A transient failure (broker or database unreachable) is retried with exponential
   pauses, then the batch is nacked and redelivered: no hot loop, nothing skipped.
4. A record-level failure is never retried as is: the batch is split in halves, each
   processed on its own, down to the single record that fails, which is tried once more
   after its neighbours landed (a fault may have healed meanwhile) and then dead-lettered
   (`unprocessable`, with the error's class, never its text). A
   redelivery after that changes nothing: the dead letter is claimed by the record's identity.
5. A systemic failure (`failures.Kind.SYSTEMIC`: by its type, or because every record of
   the batch failed alike, or a lone record failed like the one dead-lettered just before
   it with nothing committed between) dead-letters nothing and commits nothing: the batch is
   handed back, this member's partitions pause for the `Outage`'s backoff step, `/readyz`
   names the cause, and the batch is tried again when the pause ends, until it heals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.delivery.failures import Kind, Outage, Systemic, classify, describe, retrying
from shared.delivery.inbox import claim
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.outbox import stage
from shared.delivery.records import Rejection, SourceRecord, dead_letter, source_record
from shared.delivery.stream_time import StreamClock

log = logging.getLogger(__name__)

Process = Callable[[Sequence[SourceRecord]], Awaitable[None]]
UNPROCESSABLE = "unprocessable"


async def _header_less(records: tuple[Any, ...], original: Callable[..., Any]) -> Any:
    """Parser: FastStream's own, on a header-less copy of the first record (it cannot fail on
    that), made to carry the untouched batch: the handler reads `raw_message`; the body list
    keeps the framework's message metrics right. (Copying every record cost ~5% of intake.)"""
    message = await original((dataclasses.replace(records[0], headers=[]),))
    message.raw_message = records
    message.body = [record.value or b"" for record in records]
    return message


async def _no_decoding(message: Any) -> None:
    """Decoder: the handler reads `message.raw_message` itself (each record may be garbage)."""
    return None


class BatchConsumer:
    def __init__(
        self,
        *,
        service: str,
        schema: str,
        topic: str,
        group_id: str,
        process: Process,
        metrics: DeliveryMetrics,
        dead_letter_topic: str,
        members: int = 1,
        batch_size: int = 500,
        fetch_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        poll_ms: int = 50,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.service, self.schema, self.topic, self.group_id = service, schema, topic, group_id
        self.dead_letter_topic = dead_letter_topic
        self._process = process
        self._metrics = metrics
        self._members = members
        self._batch_size = batch_size
        self._fetch_wait_ms, self._fetch_min_bytes, self._poll_ms = fetch_wait_ms, fetch_min_bytes, poll_ms
        self._on_committed = on_committed
        self._subscribers: list[Any] = []
        self.outage = Outage(f"consumer {topic}", metrics.stalled)
        self._last_poison: str | None = None  # what the last lone dead letter failed with
        self._lag_partitions: set[tuple[str, int]] = set()
        self.pool: asyncpg.Pool | None = None  # set by the runtime before the broker starts
        # How far this process has read each partition (shared/delivery/stream_time.py).
        self.stream_time = StreamClock(topic, self._kafka_consumers)

    def register(self, broker: KafkaBroker) -> None:
        """`members` group members in this process: each owns some partitions and runs its
        own batches, so one computes while another waits for the database."""
        for member in range(self._members):
            subscriber = broker.subscriber(
                self.topic,
                batch=True,
                max_records=self._batch_size,
                fetch_max_wait_ms=self._fetch_wait_ms,
                fetch_min_bytes=self._fetch_min_bytes,
                batch_timeout_ms=self._poll_ms,  # a look for fetched records (local); idle: then as long again
                group_id=self.group_id,
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.NACK_ON_ERROR,
                parser=_header_less,
                decoder=_no_decoding,
                heartbeat_interval_ms=1000,
                title=f"{self.service} {self.topic} #{member + 1}",
            )
            subscriber(self._on_batch)
            self._subscribers.append(subscriber)

    async def _on_batch(self, message: KafkaMessage) -> None:
        try:
            await self.deliver([source_record(record) for record in message.raw_message])
        except Systemic:
            # Hand the batch back (nack rewinds every partition to its first record; the
            # framework's ack after a normal return then commits nothing) and pause this
            # member's partitions for the step: it keeps polling, so it stays in the group.
            await message.nack()
            consumer: Any = message.consumer  # the member's AIOKafkaConsumer
            paused = consumer.assignment()
            consumer.pause(*paused)
            loop = asyncio.get_running_loop()
            loop.call_later(self.outage.pause_left(), lambda: consumer.resume(*(paused & consumer.assignment())))

    async def deliver(self, records: Sequence[SourceRecord]) -> None:
        """Process `records`. Raises the failure for a transient one (the batch is
        redelivered) and `Systemic` for anything else that escapes isolation (the caller
        pauses), after recording the outage."""
        started = time.perf_counter()
        try:
            outcome = await self._deliver(records)
        except Exception as error:
            self.outage.failed(error)
            if classify(error) is Kind.TRANSIENT:
                self._metrics.batches.labels("redelivered").inc()
                raise
            self._metrics.batches.labels("stalled").inc()
            raise Systemic(describe(error)) from error
        self.outage.healed()
        self._metrics.batches.labels(outcome).inc()
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self.stream_time.processed(records)  # every record landed or was dead-lettered
        self._on_committed()

    async def _deliver(self, records: Sequence[SourceRecord]) -> str:
        try:
            await retrying(lambda: self._process(records), what=f"{self.service} batch")
        except Exception as error:
            if classify(error) is not Kind.POISON:
                raise
            await self._isolate(records, error)
            return "isolated"
        self._last_poison = None
        return "committed"

    async def _isolate(self, records: Sequence[SourceRecord], error: BaseException) -> None:
        """Split the batch down to the records that fail; dead-letter them, unless every
        record failed alike (then nothing is dead-lettered: `Systemic`)."""
        failures: list[tuple[SourceRecord, BaseException]] = []
        committed = await self._bisect(records, error, failures)
        if committed and failures:
            # A part committed after these failed: perhaps the fault healed meanwhile (a
            # systemic one ending mid-bisection). Poison fails again; the rest lands now.
            failures = await self._fail_again(failures)
        if not failures:  # every part committed when tried again on its own
            return
        causes = {describe(failure) for _, failure in failures}
        if not committed and len(causes) == 1:
            (cause,) = causes
            if len(records) > 1 or cause == self._last_poison:
                raise Systemic(cause)
        log.error(
            "batch failed, dead-lettering the records that fail alone",
            extra={"records": len(records), "failed": len(failures), "error": describe(error)},
        )
        for record, failure in failures:
            rejection = Rejection(UNPROCESSABLE, f"processing failed: {describe(failure)}")
            await retrying(functools.partial(self.quarantine, record, rejection), what=f"{self.service} quarantine")
        self._last_poison = describe(failures[0][1]) if len(records) == 1 else None

    async def _bisect(
        self,
        records: Sequence[SourceRecord],
        error: BaseException,
        failures: list[tuple[SourceRecord, BaseException]],
    ) -> bool:
        """Collect the records that fail on their own; True if any part committed."""
        if len(records) == 1:
            failures.append((records[0], error))
            return False
        middle = len(records) // 2
        committed = False
        for half in (records[:middle], records[middle:]):
            try:
                await retrying(functools.partial(self._process, half), what=f"{self.service} half batch")
                committed = True
            except Exception as failure:
                if classify(failure) is not Kind.POISON:
                    raise
                committed = await self._bisect(half, failure, failures) or committed
        return committed

    async def _fail_again(
        self, failures: list[tuple[SourceRecord, BaseException]]
    ) -> list[tuple[SourceRecord, BaseException]]:
        """Each failed record tried once more on its own; those that fail again."""
        still: list[tuple[SourceRecord, BaseException]] = []
        for record, _ in failures:
            try:
                await retrying(functools.partial(self._process, [record]), what=f"{self.service} record")
            except Exception as failure:
                if classify(failure) is not Kind.POISON:
                    raise
                still.append((record, failure))
        return still

    async def quarantine(self, record: SourceRecord, rejection: Rejection) -> None:
        """Dead-letter one record in its own transaction, once per record identity."""
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            claims = await claim(conn, self.schema, [(record.identity_id, record.identity)])
            if claims.fresh:
                await stage(
                    conn,
                    self.schema,
                    [
                        dead_letter(
                            record, rejection, topic=self.dead_letter_topic, service=self.service, at=datetime.now(UTC)
                        )
                    ],
                )
        if claims.fresh:
            self._metrics.dead_letters.labels(rejection.code).inc()

    def _kafka_consumers(self) -> list[Any]:
        """The members' Kafka consumers (none before the broker started them)."""
        return [c for c in (getattr(s, "consumer", None) for s in self._subscribers) if c is not None]

    def ready(self) -> bool | str:
        """Subscribed and making progress (or why not)."""
        if not (self._subscribers and all(getattr(s, "running", False) for s in self._subscribers)):
            return f"{self.topic}: not subscribed"
        return self.outage.ready()

    async def measure_lag(self) -> None:
        """Per assigned partition: the broker's high watermark minus this process' position."""
        seen: set[tuple[str, int]] = set()
        for subscriber in self._subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                try:
                    position = await asyncio.wait_for(consumer.position(tp), 1.0)
                except Exception:
                    continue
                seen.add((tp.topic, tp.partition))
                self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
        for topic, partition in self._lag_partitions - seen:
            self._metrics.consumer_lag.remove(topic, str(partition))
        self._lag_partitions = seen
