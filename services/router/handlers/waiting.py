"""The periodic pass: waiting tickets against the clock.

Events assign waiting tickets when they free capacity; the clock does the rest: agents come
on shift, a new day's hat wearers start, office hours open. Every `assign_interval_s`
(`runtime.every`, which reports a failing pass in readiness) each tier with waiting tickets
and someone on shift gets one transaction under its lock (the same lock events take), which
assigns what fits and stages the `ticket.routed` events.

Idempotent by state: a ticket that was assigned no longer waits, so no pass (here, in a
batch, or in another replica) assigns it twice; the event id derives from the routed event
that left it waiting, so whoever assigns it emits the same id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.router.adapters.store import RouterStore, sync_roster
from services.router.core.assignment import on_shift, open_desk
from services.router.core.dispatch import Outcome, Routed, assign_waiting
from services.router.handlers.events import routed_records
from services.router.metrics import RouterMetrics
from shared.charter import Charter
from shared.delivery.outbox import stage
from shared.events import Tier


class WaitingTickets:
    def __init__(
        self,
        *,
        charter: Charter,
        schema: str,
        topic: str,
        pool: Callable[[], asyncpg.Pool],
        clock: Callable[[], datetime],
        metrics: RouterMetrics,
        committed: Callable[[], None],
    ) -> None:
        self.charter, self.schema, self.topic = charter, schema, topic
        self._pool, self._clock, self._metrics = pool, clock, metrics
        self._committed = committed

    async def sync_roster(self) -> None:
        """Every roster agent gets a seat (at start, before the consumers)."""
        await sync_roster(self._pool(), self.schema, self.charter)

    async def pass_once(self) -> list[Routed]:
        """Assign what the clock now allows, in every tier; refresh the gauges."""
        now = self._clock()
        staffed = []
        for tier in self.charter.ladder:
            agents = on_shift(self.charter, tier, now)
            self._metrics.on_shift.labels(tier.value).set(len(agents))
            if agents:
                staffed.append(tier)
        routed: list[Routed] = []
        async with self._pool().acquire() as conn:
            store = RouterStore(conn, self.schema)
            for tier in sorted(await store.waiting_tiers(staffed)):
                async with conn.transaction():
                    outcome = await assign_tier(store, self.charter, tier, now)
                    await stage(conn, self.schema, routed_records(outcome.routed, now, self.topic))
                routed += outcome.routed
            self._metrics.queue_depths(await store.queue_depths())
        if routed:
            self._metrics.count(routed)
            self._committed()
        return routed


async def assign_tier(store: RouterStore, charter: Charter, tier: Tier, now: datetime) -> Outcome:
    """Under `tier`'s lock, assign the waiting tickets its available agents have room for."""
    desk = open_desk(charter, tier, now, (await store.lock_desks([tier])).get(tier, {}))
    free = desk.free()
    if not free:
        return Outcome()
    _, waiting = await store.load([], {tier: (free, desk.live)})
    outcome = assign_waiting(charter, desk, waiting)
    await store.save(outcome.tickets, [desk])
    return outcome
