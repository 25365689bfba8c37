"""The SLA timer loop: fires what is due by stream time, sleeps until the next deadline.

*Due* means due by the stream, not by the wall clock: a timer fires only once escalation
has read its ticket's partition past the deadline (`shared.delivery.stream_time`: the
latest record time processed there, or the clock's now when the partition is caught up).
So after downtime nothing fires until the backlog that may answer it has been read, and
each replica fires only the timers of the partitions Kafka assigned to it.

No loop scans tickets: it asks PostgreSQL, per partition it owns, for the earliest pending
deadline (an index on the partition and due time of pending timers) and sleeps until then,
at most `poll_s`. Arming a nearer timer wakes it early: the handler's write notifies every
replica's loop at commit (LISTEN/NOTIFY); `poll_s` covers a notification lost while the
listening connection was down. A timer due by the clock whose partition is behind waits
for the stream: each processed batch wakes the loop then. Time is the injected clock's,
the same the service runtime stamps events with.

Invariants (tests: tests/integration/escalation/test_timer_store.py, test_sla.py,
test_crash.py, test_stream_time.py; tests/unit/escalation/test_timers_once.py;
tests/unit/kit/test_stream_time.py):
1. Firing is one transaction per pass: due timers are row-locked (replicas skip each
   other's), their tickets' locks taken without waiting, each ticket's pending timers
   re-read under its lock and settled by `core.sla.fire_due`, the breaches and escalations
   staged in the kit's outbox in the same transaction. A crash before the commit leaves
   the timers pending; after it, they are settled: every due timer fires exactly once.
2. A sleeping loop wakes for a nearer deadline armed by any replica (the notification
   arrives at the commit), for a stream advance while a due timer waits for its partition,
   and otherwise sleeps until the earliest pending deadline of the partitions it owns.
3. A timer fires only when its partition is assigned to this process and has been read
   past its deadline; a partition not read since it was assigned fires nothing. Timers
   armed before they carried a partition (migration 0002) are placed on their ticket's
   partition (murmur2 of the ticket id) before any of them fires.

A failing pass is an `Outage` (shared/delivery/failures.py): waited out with growing
pauses (one log line per step) and retried; `/readyz` names it at once when systemic, after
30 s when transient; `support_stalled{part="loop sla_timers"}` is 1 meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from services.escalation.adapters.store import EscalationStore, outbox_records
from services.escalation.core.sla import SlaTimer, TimerState, fire_due
from services.escalation.metrics import EscalationMetrics
from shared.charter import Charter
from shared.db import connect_options
from shared.delivery.failures import Outage
from shared.delivery.outbox import stage
from shared.delivery.stream_time import StreamClock, Watermark
from shared.partitioning import partition_for

log = logging.getLogger(__name__)

# Due timers that a pass could not take (a batch or another replica holds them) are tried
# again after this pause, so the loop never spins.
_PAUSE_S = 0.05
_COUNT_EVERY_S = 10.0  # the pending-timers gauge (a count over the pending index)
_PLACE_BATCH = 1000
_NEVER = datetime.min.replace(tzinfo=UTC)  # the stream time of a partition not read yet


@dataclass
class Pass:
    claimed: int = 0  # due timers row-locked by this pass
    busy: bool = False  # some of their tickets were locked by a batch in progress
    fired: list[SlaTimer] = field(default_factory=list)


async def fire_due_timers(
    conn: asyncpg.Connection,
    store: EscalationStore,
    charter: Charter,
    *,
    now: datetime,
    stream_time: Mapping[int, datetime],
    limit: int,
    events_topic: str,
) -> Pass:
    """One firing pass in the caller's transaction (invariant 1): the timers of the
    partitions in `stream_time` due by that partition's stream time (invariant 3)."""
    due = await store.claim_due(conn, stream_time, limit)
    if not due:
        return Pass()
    locked = await store.try_lock(conn, due)
    firings = [
        (
            ticket.ticket_id,
            fire_due(
                charter, ticket, pending, now, _NEVER if partition is None else stream_time.get(partition, _NEVER)
            ),
        )
        for ticket, partition, pending in await store.pending(conn, locked)
    ]
    await store.settle(conn, firings)
    await stage(conn, store.schema, outbox_records(events_topic, [e for _, firing in firings for e in firing.emit]))
    return Pass(
        claimed=len(due),
        busy=len(locked) < len(due),
        fired=[timer for _, firing in firings for timer in firing.settled if timer.state is TimerState.FIRED],
    )


def plan_sleep(
    next_due: Mapping[int, datetime], marks: Mapping[int, Watermark], now: datetime, poll_s: float
) -> tuple[float, bool]:
    """How long the loop may sleep (seconds), and whether a timer due by the clock waits
    for its partition to be read further (then a stream advance wakes the loop). Pure.

    `next_due`: the earliest pending deadline per owned partition; `marks`: their stream time.
    While no partition is owned yet, or one's stream time is not known yet (just assigned),
    the first batches read there wake the loop too."""
    delay, held = poll_s, not marks or any(mark.until is None for mark in marks.values())
    for partition, due in next_due.items():
        mark = marks.get(partition, Watermark(None))
        if mark.until is not None and due <= mark.until:
            return 0.0, held  # claimable now (a batch held its ticket, or the pass was full)
        if due > now:  # the clock must pass it first; a partition behind reads no further ahead
            delay = min(delay, (due - now).total_seconds())
        elif not mark.caught_up:
            held = True
    return delay, held


class SlaTimerLoop:
    def __init__(
        self,
        *,
        store: EscalationStore,
        charter: Charter,
        pool: Callable[[], asyncpg.Pool],
        database_url: str,
        events_topic: str,
        clock: Callable[[], datetime],
        committed: Callable[[], None],
        stream: StreamClock,
        outage: Outage,
        metrics: EscalationMetrics,
        poll_s: float,
        batch: int,
    ) -> None:
        self._store, self._charter, self._pool = store, charter, pool
        self._database_url, self._events_topic = database_url, events_topic
        self._clock, self._committed, self._metrics = clock, committed, metrics
        self._poll_s, self._batch = poll_s, batch
        self._stream = stream
        self._marks: dict[int, Watermark] = {}  # the stream time of the last pass
        self._held = False  # a due timer waits for the stream: an advance wakes the loop
        self._stream_moved = False  # the stream advanced since the last pass read it
        self._unplaced = True  # timers armed before they carried a partition may exist
        stream.on_advance(self._stream_advanced)
        self._wakeup = asyncio.Event()
        self._wake_at: datetime | None = None  # when the loop means to wake; None while it decides
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._outage = outage
        self._counted_at = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="escalation-sla-timers")

    async def stop(self) -> None:
        """Finish the pass in hand, then stop (its records drain with the outbox)."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10.0)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await self._close_listener()

    def wake(self) -> None:
        """Look for due timers now (e.g. after the injected clock moved)."""
        self._wakeup.set()

    async def ready(self) -> bool | str:
        if self._task is None or self._task.done():
            return "sla_timers: not running"
        return self._outage.ready()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._listen()
                if self._unplaced:
                    await self._place()
                done = await self._fire()
            except Exception as error:  # the loop never dies: it waits and tries again
                pause = self._outage.failed(error)
                await self._close_listener()
                with contextlib.suppress(TimeoutError):  # a stop ends the pause
                    await asyncio.wait_for(self._wakeup.wait(), pause)
                self._wakeup.clear()
                continue
            self._outage.healed()
            if done.claimed < self._batch or done.busy:  # a full pass: more may be due at once
                await self._sleep()

    async def _fire(self) -> Pass:
        now = self._clock()
        self._stream_moved = False
        self._marks = await self._stream.read_until(now)
        stream_time = {p: mark.until for p, mark in self._marks.items() if mark.until is not None}
        if not stream_time:
            return Pass()
        async with self._pool().acquire() as conn, conn.transaction():
            done = await fire_due_timers(
                conn,
                self._store,
                self._charter,
                now=now,
                stream_time=stream_time,
                limit=self._batch,
                events_topic=self._events_topic,
            )
        if done.fired:
            self._committed()
        for timer in done.fired:
            self._metrics.breaches.labels(timer.tier.value, timer.kind.value).inc()
            self._metrics.timer_lag.observe((now - timer.due_at).total_seconds())
        return done

    async def _sleep(self) -> None:
        self._wakeup.clear()
        self._wake_at = None  # a notification arriving while we decide wakes us
        async with self._pool().acquire() as conn:
            next_due = await self._store.next_due(conn, self._marks)
            if time.monotonic() - self._counted_at >= _COUNT_EVERY_S:
                self._metrics.timers_pending.set(await self._store.pending_count(conn))
                self._counted_at = time.monotonic()
        now = self._clock()
        delay, self._held = plan_sleep(next_due, self._marks, now, self._poll_s)
        if self._held and self._stream_moved:  # it moved while this pass ran: look again
            self._wakeup.set()
        earliest = min(next_due.values(), default=None)
        self._metrics.timer_overdue.set(0.0 if earliest is None else max((now - earliest).total_seconds(), 0.0))
        delay = max(delay, _PAUSE_S)
        self._wake_at = now + timedelta(seconds=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), delay)

    def _stream_advanced(self) -> None:
        """A batch's effects are durable: a timer held back for its partition may be due now."""
        self._stream_moved = True
        if self._held:
            self._wakeup.set()

    async def _place(self) -> None:
        """Give timers armed before 0002 their ticket's partition: murmur2 of the ticket id
        over the topic's partition count, as every producer places the ticket's records.
        Waits (fires nothing of theirs) until a consumer knows the partition count."""
        count = self._stream.partition_count()
        if count is None:
            return
        async with self._pool().acquire() as conn:
            while tickets := await self._store.unplaced(conn, _PLACE_BATCH):
                await self._store.place(conn, {t: partition_for(t.encode(), count) for t in tickets})
        self._unplaced = False

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        """A batch armed a timer due at `payload`: wake if that is sooner than planned."""
        if self._wake_at is None or datetime.fromisoformat(payload) < self._wake_at:
            self._wakeup.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self._database_url, **connect_options(self._database_url))
        await self._listener.add_listener(self._store.channel, self._notified)

    async def _close_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), 2.0)
            except Exception:
                listener.terminate()
