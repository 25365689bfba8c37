"""Stream time (shared/delivery/stream_time.py, invariants 1-3) and the timer loop's sleep
plan on it (services/escalation/adapters/timers.py, invariant 3): pure parts, and the
stream clock over stand-in Kafka consumers (on the real broker:
tests/integration/escalation/test_stream_time.py)."""

from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from services.escalation.adapters.timers import plan_sleep
from shared.delivery.records import SourceRecord
from shared.delivery.stream_time import Progress, StreamClock, Watermark, advance, watermark

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOPIC = "support.ticket-events"


def record(partition: int, offset: int, at: datetime, topic: str = TOPIC) -> SourceRecord:
    return SourceRecord(topic, partition, offset, int(at.timestamp() * 1000), b"t-1", b"{}", [])


def test_progress_is_the_next_offset_and_the_latest_record_time():
    progress = advance(None, [record(0, 7, T0 + timedelta(seconds=2)), record(0, 8, T0 + timedelta(seconds=1))])
    assert progress == Progress(9, T0 + timedelta(seconds=2))  # a producer's clock behind: time stays the latest
    assert advance(Progress(3), [record(0, 3, T0)]) == Progress(4, T0)  # placed at a committed offset


@given(st.lists(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 10**6)), min_size=1, max_size=5), max_size=8))
def test_progress_never_moves_back(batches):
    progress = None
    for batch in batches:
        later = advance(progress, [record(0, offset, T0 + timedelta(seconds=s)) for offset, s in batch])
        if progress is not None:
            assert later.next_offset >= progress.next_offset and later.read_until >= progress.read_until
        progress = later


def test_a_caught_up_partition_is_read_until_now_one_behind_until_its_last_record():
    now = T0 + timedelta(hours=1)
    read = Progress(10, T0)
    assert watermark(read, 10, now) == Watermark(now, caught_up=True)
    assert watermark(read, 11, now) == Watermark(T0)  # a record not processed yet may still answer
    assert watermark(read, None, now) == Watermark(T0)  # the broker's high watermark not fetched yet
    assert watermark(None, 0, now) == Watermark(None)  # nothing known about it yet
    assert watermark(Progress(0), 0, now) == Watermark(now, caught_up=True)  # an empty partition
    assert watermark(Progress(4), 9, now) == Watermark(None)  # placed at its committed offset, behind


class Consumer:
    """What the stream clock uses of aiokafka's consumer."""

    def __init__(self, assigned: dict[int, int | None], committed: dict[int, int | None]) -> None:
        self.assigned, self.commits = assigned, committed  # partition -> high watermark; -> committed
        self.asked: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, p) for p in self.assigned}

    def highwater(self, tp: TopicPartition) -> int | None:
        assert tp.partition in self.assigned, "Partition is not assigned"
        return self.assigned[tp.partition]

    async def committed(self, tp: TopicPartition) -> int | None:
        self.asked.append(tp.partition)
        return self.commits.get(tp.partition)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(6)) if topic == TOPIC else None


async def test_the_clock_reads_only_assigned_partitions_and_asks_the_broker_once():
    consumer = Consumer({0: 5, 1: 3, 2: 8, 3: 0}, {1: 3, 2: 6})
    clock = StreamClock(TOPIC, lambda: [consumer])
    heard: list[None] = []
    clock.on_advance(lambda: heard.append(None))
    clock.processed([record(0, 3, T0), record(0, 4, T0 + timedelta(seconds=1)), record(9, 0, T0, topic="other")])
    assert len(heard) == 1
    now = T0 + timedelta(minutes=10)
    assert await clock.read_until(now) == {
        0: Watermark(now, caught_up=True),  # processed up to the high watermark
        1: Watermark(now, caught_up=True),  # nothing processed here, but the group committed all of it
        2: Watermark(None),  # committed 6 of 8: two records unread, their time unknown
        3: Watermark(now, caught_up=True),  # empty, never committed
    }
    consumer.assigned[2] = 9
    clock.processed([record(2, 6, T0 + timedelta(seconds=5))])
    await clock.read_until(now)
    assert sorted(consumer.asked) == [1, 2, 3]  # once each; partition 0 was known
    del consumer.assigned[0]  # revoked
    assert await clock.read_until(now) == {
        1: Watermark(now, caught_up=True),
        2: Watermark(T0 + timedelta(seconds=5)),
        3: Watermark(now, caught_up=True),
    }
    assert clock.partition_count() == 6
    assert StreamClock(TOPIC, list).partition_count() is None  # before the consumers started


def test_the_loop_sleeps_until_a_deadline_the_clock_brings_and_waits_for_the_stream_otherwise():
    now, poll = T0, 5.0
    caught_up, behind = Watermark(now, caught_up=True), Watermark(now - timedelta(minutes=1))
    soon = now + timedelta(seconds=2)
    assert plan_sleep({}, {0: caught_up}, now, poll) == (poll, False)
    assert plan_sleep({}, {}, now, poll) == (poll, True)  # nothing assigned yet: the first batches wake it
    assert plan_sleep({}, {0: caught_up, 1: Watermark(None)}, now, poll) == (poll, True)
    assert plan_sleep({0: soon}, {0: caught_up}, now, poll) == (2.0, False)
    assert plan_sleep({0: now + timedelta(hours=1)}, {0: caught_up}, now, poll) == (poll, False)
    assert plan_sleep({0: now}, {0: caught_up}, now, poll) == (0.0, False)  # claimable: look again at once
    assert plan_sleep({0: now - timedelta(seconds=30)}, {0: behind}, now, poll) == (poll, True)
    assert plan_sleep({0: now - timedelta(seconds=90)}, {0: behind}, now, poll) == (0.0, False)
    assert plan_sleep({0: soon}, {0: behind}, now, poll) == (2.0, False)  # the stream cannot be ahead of the clock
    assert plan_sleep({0: now, 1: soon}, {0: Watermark(None), 1: caught_up}, now, poll) == (2.0, True)
