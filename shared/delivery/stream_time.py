"""Stream time: how far this process has read each partition of a topic it consumes, so
that what is late is decided by what was read, not by the wall clock (docs/architecture/delivery.md).

A partition's *read-until* is the latest record time among the records whose effects are
durable (processed by a batch of this process, or below the group's committed offset).
When the partition is caught up (everything below the broker's high watermark is
processed) nothing unread can be older, so its read-until is *now*: the clock's, moving
with it. A partition read by nobody since it was assigned, or not caught up with nothing
processed yet, has no read-until: nothing is late there yet.

Invariants (tests: tests/unit/kit/test_stream_time.py; on the broker:
tests/integration/escalation/test_stream_time.py):
1. Progress only moves forward (offsets and record times are maxima), so it stays a true
   lower bound across revocations and re-assignments: offsets below it were processed.
2. Only partitions assigned to this process have a read-until; a revoked one drops out.
3. Listeners hear every advance, after the batch's effects are durable.

Record times are the producers' (CreateTime): a producer whose clock is off skews its
partitions' read-until by as much, like any race between services (docs/architecture/delivery.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.delivery.records import SourceRecord

log = logging.getLogger(__name__)
_COMMITTED_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Progress:
    """One partition: every offset below `next_offset` is processed, its effects durable;
    `read_until` is the latest record time among those this process saw (None: none seen)."""

    next_offset: int
    read_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far a partition has been read: `until` (None: not known yet), and whether it is
    caught up (then `until` is now, and moves with the clock)."""

    until: datetime | None
    caught_up: bool = False


def advance(progress: Progress | None, records: Sequence[SourceRecord]) -> Progress:
    """`progress` after the records of one partition were processed. Pure."""
    if not records:
        assert progress is not None
        return progress
    latest = datetime.fromtimestamp(max(r.timestamp_ms for r in records) / 1000, UTC)
    next_offset = max(r.offset for r in records) + 1
    if progress is None:
        return Progress(next_offset, latest)
    until = latest if progress.read_until is None else max(progress.read_until, latest)
    return Progress(max(progress.next_offset, next_offset), until)


def watermark(progress: Progress | None, highwater: int | None, now: datetime) -> Watermark:
    """A partition's read-until from what was processed and the broker's high watermark
    (None until the consumer fetched it). Pure."""
    if progress is None:
        return Watermark(None)
    if highwater is not None and progress.next_offset >= highwater:
        return Watermark(now, caught_up=True)
    return Watermark(progress.read_until)


class StreamClock:
    """Stream time of one topic in this process: fed by the `BatchConsumer` after each
    batch whose effects are durable, read by whoever decides what is late.

    `consumers` gives the group members' Kafka consumers (aiokafka's `AIOKafkaConsumer`:
    `assignment()`, `highwater(tp)`, `committed(tp)`, `partitions_for_topic(topic)`)."""

    def __init__(self, topic: str, consumers: Callable[[], Iterable[Any]]) -> None:
        self.topic = topic
        self._consumers = consumers
        self._progress: dict[int, Progress] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call `listener` (synchronously, it must not block) after every processed batch."""
        self._listeners.append(listener)

    def processed(self, records: Sequence[SourceRecord]) -> None:
        """A batch's effects are durable (invariant 3): its partitions advance."""
        by_partition: dict[int, list[SourceRecord]] = {}
        for record in records:
            if record.topic == self.topic:
                by_partition.setdefault(record.partition, []).append(record)
        if not by_partition:
            return
        for partition, mine in by_partition.items():
            self._progress[partition] = advance(self._progress.get(partition), mine)
        for listener in self._listeners:
            listener()

    def progress(self) -> Mapping[int, Progress]:
        return dict(self._progress)

    def partition_count(self) -> int | None:
        """The topic's partition count from a member's metadata (None before it has any)."""
        for consumer in self._consumers():
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return len(partitions)
        return None

    async def read_until(self, now: datetime) -> dict[int, Watermark]:
        """Each partition of the topic assigned to this process (invariant 2), with its
        read-until at `now`. A partition nothing was processed on since this process
        started is placed at the group's committed offset (asked of the broker once)."""
        for consumer in self._consumers():
            for tp in list(consumer.assignment()):
                if tp.topic == self.topic and tp.partition not in self._progress:
                    await self._place(consumer, tp)
        # No await from here on: the assignment cannot change while it is read.
        return {
            tp.partition: watermark(self._progress.get(tp.partition), consumer.highwater(tp), now)
            for consumer in self._consumers()
            for tp in consumer.assignment()
            if tp.topic == self.topic
        }

    async def _place(self, consumer: Any, tp: Any) -> None:
        try:
            committed = await asyncio.wait_for(consumer.committed(tp), _COMMITTED_TIMEOUT_S)
        except Exception:  # a rebalance or an outage: no read-until yet, asked again next time
            log.debug("committed offset not known yet", exc_info=True)
            return
        if tp.partition not in self._progress:  # a batch may have landed meanwhile
            # No commit yet: everything from the start must be read (auto_offset_reset=earliest).
            self._progress[tp.partition] = Progress(committed or 0)
