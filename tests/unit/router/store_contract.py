"""One contract for every router store: the in-memory fake (unit tests) and PostgreSQL
(tests/integration/router/test_store_contract.py), so the fake cannot drift from the real thing.

A subclass provides the `env` fixture: an object with `transaction()` (an async context
yielding a store) and `async sync_roster(charter)`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from services.router.core.assignment import Desk, Seat
from services.router.core.dispatch import Ticket
from shared.charter import load_charter
from shared.events import Priority, Tier
from tests.unit.router.builders import TINY

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def ticket(
    ticket_id: str,
    *,
    tier: Tier = Tier.L1,
    priority: Priority = Priority.P3,
    minutes: int = 0,
    assignee: str | None = None,
    urgent: bool = False,
    shadow: bool = False,
    resolved: bool = False,
    queue: str = "l1-general",
    owner: Tier | None = None,
) -> Ticket:
    return Ticket(
        ticket_id,
        f"corr-{ticket_id}",
        "login",
        priority,
        tier,
        queue,
        assignee,
        owner,
        urgent,
        shadow,
        resolved,
        T0 + timedelta(minutes=minutes),
        f"routed-{ticket_id}",
    )


class StoreContract:
    async def test_saved_tickets_load_back_as_they_were(self, env):
        saved = [
            ticket("a", assignee="ana", owner=Tier.L1, tier=Tier.L3, queue="l3-engineering", urgent=True),
            ticket("b", priority=Priority.P1, minutes=-5),
            ticket("c", resolved=True, shadow=True),
        ]
        async with env.transaction() as store:
            await store.save(saved, [])
        async with env.transaction() as store:
            tickets, waiting = await store.load(["a", "b", "c", "nobody"], {})
            assert await store.tiers_of(["a", "b", "nobody"]) == {"a": Tier.L3, "b": Tier.L1}
        assert tickets == {t.ticket_id: t for t in saved} and waiting == []
        changed = dataclasses.replace(
            saved[1], tier=Tier.L2, queue="l2-investigations", assignee="gia", routed_id="routed-b-2"
        )
        async with env.transaction() as store:
            await store.save([changed], [])
            assert (await store.load(["b"], {}))[0] == {"b": changed}

    async def test_the_line_is_priority_then_oldest_then_id_and_only_urgent_outside_office_hours(self, env):
        line = [
            ticket("p3-old", minutes=1),
            ticket("p3-new", minutes=9),
            ticket("p1", priority=Priority.P1, minutes=5, urgent=True),
            ticket("p3-tie-b", minutes=3),
            ticket("p3-tie-a", minutes=3),
            ticket("jump", minutes=7, urgent=True),
        ]
        elsewhere = [
            ticket("assigned", minutes=-9, assignee="ana"),
            ticket("resolved", minutes=-9, resolved=True),
            ticket("shadow", minutes=-9, shadow=True),
            ticket("l2", tier=Tier.L2, queue="l2-investigations", minutes=-9),
        ]
        async with env.transaction() as store:
            await store.save(line + elsewhere, [])
        async with env.transaction() as store:
            _, first = await store.load([], {Tier.L1: (4, True)})
            _, urgent = await store.load([], {Tier.L1: (9, False)})
            _, both = await store.load(["assigned"], {Tier.L1: (1, True), Tier.L2: (5, True)})
            assert await store.waiting_tiers([Tier.L1, Tier.L2, Tier.L3]) == {Tier.L1, Tier.L2}
            depths = await store.queue_depths()
        assert [t.ticket_id for t in first] == ["p1", "p3-old", "p3-tie-a", "p3-tie-b"]
        assert [t.ticket_id for t in urgent] == ["p1", "jump"]
        assert sorted(t.ticket_id for t in both) == ["l2", "p1"]
        assert sorted(depths) == [("L1", "l1-general", 7), ("L2", "l2-investigations", 1)]  # the shadow one counts

    async def test_seats_exist_for_the_roster_and_keep_what_was_saved(self, env):
        charter = load_charter(TINY)
        await env.sync_roster(charter)
        async with env.transaction() as store:
            seats = await store.lock_desks([Tier.L1, Tier.L3])
            assert seats == {Tier.L1: {"ana": Seat(0, 0)}, Tier.L3: {"kofi": Seat(0, 0)}}
            desk = Desk(Tier.L1, 2, ("ana",), True, {"ana": Seat(2, 7)}, changed={"ana"})
            await store.save([], [desk])
        await env.sync_roster(charter)  # a restart keeps the loads
        async with env.transaction() as store:
            assert await store.lock_desks([Tier.L1, Tier.L2]) == {
                Tier.L1: {"ana": Seat(2, 7)},
                Tier.L2: {"gia": Seat(0, 0)},
            }
