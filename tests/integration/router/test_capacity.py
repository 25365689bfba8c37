"""Capacity full, then freed: the waiting ticket first in line (priority, then oldest) gets the
agent, with a ticket.routed carrying the assignee. Through intake's HTTP API, on the real
broker and database (tests/charters/tiny.yaml: ana alone at L1, two open tickets at most)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from tests.integration.router.conftest import Clock, stack, summary
from tests.unit.router.builders import TINY


async def test_capacity_full_then_freed_assigns_the_oldest_waiting_ticket(platform):
    async with stack(platform, TINY, Clock(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))) as floor:
        tickets = {}
        for name, priority in [("a", "P3"), ("b", "P3"), ("c", "P3"), ("d", "P3"), ("urgent", "P1")]:
            tickets[name] = await floor.create(intent="login", priority=priority)
            await floor.wait_routed(tickets[name])  # one at a time: their order is the queue's order
        assert [floor.routed(tickets[n])[0].event.assignee for n in "abcd"] == ["ana", "ana", None, None]
        assert floor.routed(tickets["urgent"])[0].event.assignee is None  # P1, but nobody has room

        await floor.command(tickets["a"], "resolution", {"tier": "L1", "agent_id": "ana", "resolution_code": "done"})
        urgent = (await floor.wait_routed(tickets["urgent"], 2))[1]
        assert summary(urgent) == ("L1", "l1-general", "ana", "assignment", None)  # priority first
        assert urgent.causation_id == floor.routed(tickets["urgent"])[0].id

        await floor.command(tickets["b"], "resolution", {"tier": "L1", "agent_id": "ana", "resolution_code": "done"})
        oldest = (await floor.wait_routed(tickets["c"], 2))[1]
        assert summary(oldest) == ("L1", "l1-general", "ana", "assignment", None)  # then the oldest
        await floor.events.settle(1.0)
        assert len(floor.routed(tickets["d"])) == 1  # still waiting: ana is full again

        conn = await asyncpg.connect(platform.database_url)
        try:
            assert await conn.fetchval(f"SELECT open_tickets FROM {floor.schema}.agents WHERE agent = 'ana'") == 2
            assert await conn.fetchval(f"SELECT count(*) FROM {floor.schema}.tickets WHERE assignee = 'ana'") == 2
        finally:
            await conn.close()
