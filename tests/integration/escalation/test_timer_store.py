"""The PostgreSQL store keeps the timer guarantees (services/escalation/adapters/store.py,
invariants 1-3; adapters/timers.py, invariants 1-2): the scenarios the in-memory store
passes (tests/unit/escalation/timeline.py), here with two firing passes racing like two
replicas; a batch holding a ticket's lock makes a pass skip that ticket, never wait; the
loop's questions are answered from the index of pending deadlines; arming a nearer timer
wakes a sleeping loop."""

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry

from services.escalation.adapters.store import MIGRATIONS, EscalationStore
from services.escalation.adapters.timers import SlaTimerLoop, fire_due_timers
from services.escalation.core.sla import SlaTimer, TimerState
from services.escalation.core.tickets import apply_events
from services.escalation.metrics import EscalationMetrics
from shared import envelope as ce
from shared.db import drop_schemas
from shared.delivery.failures import Outage
from shared.delivery.locks import tickets_locked
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.outbox import decode_headers
from shared.delivery.stream_time import Watermark
from shared.events import SlaKind, Tier
from shared.partitioning import partition_for
from shared.service import migrate
from tests.unit.escalation import builders as b
from tests.unit.escalation.builders import ALWAYS
from tests.unit.escalation.timeline import CANONICAL, Timeline, check, steps

LIMIT = 3  # small passes, so a scenario needs several and racing passes meet


class CaughtUp:
    """A stream clock of `partitions` partitions, all owned and read to the end: their
    stream time is now."""

    def __init__(self, partitions: int = 1) -> None:
        self.partitions = partitions

    def on_advance(self, listener):
        pass

    def partition_count(self):
        return self.partitions

    async def read_until(self, now):
        return {p: Watermark(now, caught_up=True) for p in range(self.partitions)}


def timer_loop(pool, store, platform, stream, poll_s=60):
    return SlaTimerLoop(
        store=store,
        charter=ALWAYS,
        pool=lambda: pool,
        database_url=platform.database_url,
        events_topic="events",
        clock=lambda: datetime.now(UTC),
        committed=lambda: None,
        stream=stream,
        outage=Outage("loop sla_timers", DeliveryMetrics(CollectorRegistry()).stalled),
        metrics=EscalationMetrics(CollectorRegistry()),
        poll_s=poll_s,
        batch=100,
    )


runs = itertools.count()


@pytest.fixture(scope="module")
async def pg(platform):
    schema = f"escalation_store_{uuid.uuid4().hex[:10]}"
    pool = await asyncpg.create_pool(platform.database_url, min_size=3, max_size=6)
    await migrate(pool, schema, MIGRATIONS)  # escalation's tables, then the kit's (outbox)
    try:
        yield pool, EscalationStore(schema)
    finally:
        await pool.close()
        await drop_schemas(platform.database_url, schema)


def pg_timeline(pool: asyncpg.Pool, store: EscalationStore) -> Timeline:
    async def process(events, now, partitions):
        tickets = {e.ticket_id for e in events}
        async with pool.acquire() as conn, tickets_locked(conn, store.schema, tickets):  # as the kit's consumer does
            changes = apply_events(ALWAYS, await store.load(conn, tickets), events, now)
            await store.save(conn, changes, partitions)
        return changes

    async def passes(now, stream_time):
        while True:
            async with pool.acquire() as conn, conn.transaction():
                done = await fire_due_timers(
                    conn, store, ALWAYS, now=now, stream_time=stream_time, limit=LIMIT, events_topic="events"
                )
            if done.claimed < LIMIT and not done.busy:
                return
            if done.busy:
                await asyncio.sleep(0.01)

    async def fire(now, stream_time, twice):
        async with pool.acquire() as conn:
            start = await conn.fetchval(f"SELECT coalesce(max(seq), 0) FROM {store.schema}.outbox")
        await asyncio.gather(*(passes(now, stream_time) for _ in range(2 if twice else 1)))  # two replicas race
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT key, value, headers FROM {store.schema}.outbox WHERE seq > $1 ORDER BY seq", start
            )
        return [ce.decode(row["key"], row["value"], decode_headers(row["headers"])) for row in rows]

    return Timeline(f"pg{next(runs)}-{uuid.uuid4().hex[:6]}", process, fire)


async def timers_of(pool, store, timeline):
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT * FROM {store.schema}.sla_timers WHERE ticket_id = ANY($1::text[])",
            [f"{timeline.prefix}-0", f"{timeline.prefix}-1"],
        )
    return [
        SlaTimer(
            r["ticket_id"], SlaKind(r["kind"]), Tier(r["tier"]), r["due_at"], r["armed_by"], TimerState(r["state"])
        )
        for r in rows
    ]


@pytest.mark.parametrize("scenario", CANONICAL.values(), ids=CANONICAL.keys())
async def test_the_orders_that_matter_most(pg, scenario):
    pool, store = pg
    timeline = pg_timeline(pool, store)
    await timeline.run(scenario)
    check(timeline, await timers_of(pool, store, timeline))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(scenario=steps)
async def test_a_timer_fires_at_most_once_with_racing_passes(pg, scenario):
    pool, store = pg
    timeline = pg_timeline(pool, store)
    await timeline.run(scenario)
    check(timeline, await timers_of(pool, store, timeline))


async def test_a_pass_skips_a_ticket_a_batch_holds_and_never_waits(pg):
    pool, store = pg
    ticket = f"held-{uuid.uuid4().hex[:6]}"
    changes = apply_events(ALWAYS, {}, [b.created(ticket), b.routed(Tier.L1, ticket)], b.T0)
    async with pool.acquire() as conn, conn.transaction():
        await store.save(conn, changes, {ticket: 0})
    late = b.T0 + timedelta(hours=1)
    # a batch of the consumer is working on the ticket
    async with pool.acquire() as batch, tickets_locked(batch, store.schema, [ticket]):
        async with asyncio.timeout(5), pool.acquire() as conn, conn.transaction():
            skipped = await fire_due_timers(
                conn, store, ALWAYS, now=late, stream_time={0: late}, limit=10, events_topic="events"
            )
        assert skipped.busy and skipped.fired == []
    async with pool.acquire() as conn, conn.transaction():
        fired = await fire_due_timers(
            conn, store, ALWAYS, now=late, stream_time={0: late}, limit=10, events_topic="events"
        )
    assert sorted(t.kind for t in fired.fired) == ["first_response", "time_in_tier"] and not fired.busy


async def test_the_loop_asks_the_index_of_pending_deadlines(pg):
    pool, store = pg
    async with pool.acquire() as conn:
        # 30,000 settled timers and a few pending ones over 6 partitions: the questions must
        # not read the settled ones
        await conn.execute(
            f"INSERT INTO {store.schema}.sla_timers "
            "(armed_by, kind, ticket_id, tier, due_at, state, partition, settled_at) "
            "SELECT 'bulk-' || n, 'first_response', 'bulk-' || n, 'L1', now(), "
            "CASE WHEN n % 10000 = 0 THEN 'pending' ELSE 'fired' END, n % 6, NULL "
            "FROM generate_series(1, 30000) AS n"
        )
        await conn.execute(f"ANALYZE {store.schema}.sla_timers")
        owned = "ARRAY[0, 2, 4]"
        claim = store._claim.replace("$1", owned).replace("$2", "ARRAY[now(), now(), now()]").replace("$3", "100")
        for statement in (store._next_due.replace("$1", owned), claim):
            plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {statement}"))
            assert "sla_timers_pending_due" in plan and "Seq Scan" not in plan, plan
        await conn.execute(f"DELETE FROM {store.schema}.sla_timers WHERE armed_by LIKE 'bulk-%'")


async def test_arming_a_nearer_timer_wakes_a_sleeping_loop(pg, platform):
    """The NOTIFY at commit reaches a loop on another connection (as on another replica),
    which then fires the timer on time instead of at the end of its 60 s sleep."""
    pool, store = pg
    loop = timer_loop(pool, store, platform, CaughtUp())
    await loop.start()
    try:
        await asyncio.sleep(0.5)  # asleep now, for up to a minute
        ticket, now = f"near-{uuid.uuid4().hex[:6]}", datetime.now(UTC)
        routed = b.routed(Tier.L1, ticket, at=now - timedelta(minutes=5) + timedelta(seconds=1))  # due in 1 s
        async with pool.acquire() as conn, conn.transaction():
            await store.save(conn, apply_events(ALWAYS, {}, [b.created(ticket), routed], now), {ticket: 0})
        query = f"SELECT state FROM {store.schema}.sla_timers WHERE ticket_id = $1 AND kind = 'first_response'"
        async with asyncio.timeout(10):
            while True:
                if await pool.fetchval(query, ticket) == "fired":
                    break
                await asyncio.sleep(0.1)
        assert datetime.now(UTC) - now < timedelta(seconds=5)
        assert await loop.ready()
    finally:
        await loop.stop()


async def test_timers_armed_before_they_carried_a_partition_are_placed_on_their_tickets_partition(pg, platform):
    """Migration 0002 leaves earlier timers without a partition; the loop places them as
    every producer places the ticket's records (murmur2 over the partition count), then
    fires them on that partition's stream time."""
    pool, store = pg
    tickets = [f"old-{uuid.uuid4().hex[:6]}-{n}" for n in range(6)]
    due = datetime.now(UTC) - timedelta(minutes=5)
    async with pool.acquire() as conn, conn.transaction():
        for ticket in tickets:
            changes = apply_events(ALWAYS, {}, [b.created(ticket), b.routed(Tier.L1, ticket, at=due)], due)
            await store.save(conn, changes, {ticket: 0})
        await conn.execute(
            f"UPDATE {store.schema}.sla_timers SET partition = NULL WHERE ticket_id = ANY($1::text[])", tickets
        )
    loop = timer_loop(pool, store, platform, CaughtUp(6), poll_s=0.2)
    await loop.start()
    try:
        query = (
            f"SELECT ticket_id, partition, state FROM {store.schema}.sla_timers "
            "WHERE ticket_id = ANY($1::text[]) AND kind = 'first_response'"
        )
        async with asyncio.timeout(10):
            while True:
                rows = await pool.fetch(query, tickets)
                if all(row["state"] == "fired" for row in rows):
                    break
                await asyncio.sleep(0.1)
        assert {row["ticket_id"]: row["partition"] for row in rows} == {
            ticket: partition_for(ticket.encode(), 6) for ticket in tickets
        }
    finally:
        await loop.stop()
