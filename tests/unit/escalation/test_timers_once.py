"""A timer fires at most once whatever the order of cancel, re-arm, expiry and
redelivery, every timer that comes due (by its partition's stream time) while current
fires exactly once, and none that the stream answered before its deadline, read or
unread when the deadline passed, fires: the core and
the firing pass over a store with the SQL store's guards (services/escalation/core/sla.py
invariants 2-4; the same scenarios on PostgreSQL: tests/integration/escalation/test_timer_store.py)."""

import itertools

import pytest
from hypothesis import given, settings

from services.escalation.adapters.timers import fire_due_timers
from services.escalation.core.tickets import Changes, apply_events
from shared.envelope import Envelope
from tests.unit.escalation.builders import ALWAYS
from tests.unit.escalation.fakes import MemoryStore, StagingConnection
from tests.unit.escalation.timeline import CANONICAL, Timeline, check, decoded, steps

runs = itertools.count()


def memory_timeline(store: MemoryStore) -> Timeline:
    async def process(events: list[Envelope], now, partitions) -> Changes:
        changes = apply_events(ALWAYS, await store.load(None, {e.ticket_id for e in events}), events, now)
        await store.save(None, changes, partitions)
        return changes

    async def fire(now, stream_time, twice: bool) -> list[Envelope]:
        conn = StagingConnection()
        for _ in range(2 if twice else 1):
            while (
                await fire_due_timers(
                    conn, store, ALWAYS, now=now, stream_time=stream_time, limit=3, events_topic="events"
                )
            ).claimed == 3:
                pass  # a full pass: the loop goes on at once
        return decoded(conn.staged)

    return Timeline(f"m{next(runs)}", process, fire)


async def run(scenario) -> None:
    store = MemoryStore()
    timeline = memory_timeline(store)
    await timeline.run(scenario)
    check(timeline, await store.all_timers())


@pytest.mark.parametrize("scenario", CANONICAL.values(), ids=CANONICAL.keys())
async def test_the_orders_that_matter_most(scenario):
    await run(scenario)


@settings(max_examples=400, deadline=None)
@given(steps)
async def test_a_timer_fires_at_most_once_and_every_due_one_fires(scenario):
    await run(scenario)
