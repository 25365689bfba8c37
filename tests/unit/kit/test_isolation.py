"""`BatchConsumer` isolation (shared/delivery/consumer.py invariant 4) without I/O: a fault that
heals while a batch is being split dead-letters nothing; real poison is still dead-lettered."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from shared.delivery.consumer import BatchConsumer
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.records import Rejection, SourceRecord


def records(n: int) -> list[SourceRecord]:
    return [SourceRecord("events", 0, offset, 1, b"T-1", f"{offset}".encode(), []) for offset in range(n)]


def consumer_with(process) -> tuple[BatchConsumer, list[int]]:
    consumer = BatchConsumer(
        service="test",
        schema="test",
        topic="events",
        group_id="g",
        process=process,
        metrics=DeliveryMetrics(CollectorRegistry()),
        dead_letter_topic="dlq",
    )
    dead: list[int] = []

    async def quarantine(record: SourceRecord, rejection: Rejection) -> None:
        dead.append(record.offset)

    consumer.quarantine = quarantine  # type: ignore[method-assign]
    return consumer, dead


async def test_a_fault_that_heals_while_the_batch_is_split_dead_letters_nothing() -> None:
    landed: list[int] = []
    calls = 0

    async def process(batch: Sequence[SourceRecord]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:  # the whole batch, its first half, that half's first record: then healed
            raise KeyError("a handler bug, fixed while the batch was being split")
        landed.extend(r.offset for r in batch)

    consumer, dead = consumer_with(process)
    await consumer.deliver(records(4))
    assert dead == []
    assert sorted(landed) == [0, 1, 2, 3]


async def test_a_record_that_fails_again_alone_is_dead_lettered_and_its_neighbours_land() -> None:
    landed: list[int] = []

    async def process(batch: Sequence[SourceRecord]) -> None:
        if any(r.offset == 2 for r in batch):
            raise ValueError("poison")
        landed.extend(r.offset for r in batch)

    consumer, dead = consumer_with(process)
    await consumer.deliver(records(4))
    assert dead == [2]
    assert sorted(landed) == [0, 1, 3]
