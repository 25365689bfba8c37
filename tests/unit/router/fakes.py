"""An in-memory `RouterStore` with the same contract (tests/unit/router/store_contract.py runs
against both), so the handler's whole decision path runs in unit and property tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from services.router.core.assignment import Desk, Seat
from services.router.core.dispatch import Ticket
from shared.charter import Charter
from shared.events import Tier


class FakeDatabase:
    def __init__(self) -> None:
        self.tickets: dict[str, Ticket] = {}
        self.seats: dict[tuple[Tier, str], Seat] = {}

    def sync_roster(self, charter: Charter) -> None:
        for tier, spec in charter.tiers.items():
            for agent in spec.roster.agents:
                self.seats.setdefault((tier, agent), Seat())


def _waiting(ticket: Ticket) -> bool:
    return ticket.assignee is None and not ticket.resolved and not ticket.shadow


class FakeStore:
    def __init__(self, db: FakeDatabase, schema: str = "fake") -> None:
        self.db = db

    async def tiers_of(self, ticket_ids: Sequence[str]) -> dict[str, Tier]:
        return {t: self.db.tickets[t].tier for t in ticket_ids if t in self.db.tickets}

    async def lock_desks(self, tiers: Iterable[Tier]) -> dict[Tier, dict[str, Seat]]:
        wanted = set(tiers)
        seats: dict[Tier, dict[str, Seat]] = {}
        for (tier, agent), seat in sorted(self.db.seats.items()):
            if tier in wanted:
                seats.setdefault(tier, {})[agent] = dataclasses.replace(seat)
        return seats

    async def load(
        self, ticket_ids: Sequence[str], wanted: dict[Tier, tuple[int, bool]]
    ) -> tuple[dict[str, Ticket], list[Ticket]]:
        tickets = {t: dataclasses.replace(self.db.tickets[t]) for t in ticket_ids if t in self.db.tickets}
        waiting = []
        for tier, (limit, live) in sorted(wanted.items()):
            line = sorted(
                (t for t in self.db.tickets.values() if t.tier == tier and _waiting(t) and (live or t.urgent)),
                key=lambda t: (t.priority, t.queued_at, t.ticket_id),
            )
            waiting += [dataclasses.replace(t) for t in line[:limit]]
        return tickets, waiting

    async def save(self, tickets: Sequence[Ticket], desks: Iterable[Desk]) -> None:
        for ticket in tickets:
            self.db.tickets[ticket.ticket_id] = dataclasses.replace(ticket)
        for desk in desks:
            for agent in desk.changed:
                self.db.seats[(desk.tier, agent)] = dataclasses.replace(desk.seats[agent])

    async def waiting_tiers(self, tiers: Iterable[Tier]) -> set[Tier]:
        wanted = set(tiers)
        return {t.tier for t in self.db.tickets.values() if t.tier in wanted and _waiting(t)}

    async def queue_depths(self) -> list[tuple[str, str, int]]:
        depths: dict[tuple[str, str], int] = {}
        for t in self.db.tickets.values():
            if t.assignee is None and not t.resolved:
                depths[(t.tier.value, t.queue)] = depths.get((t.tier.value, t.queue), 0) + 1
        return [(tier, queue, count) for (tier, queue), count in sorted(depths.items())]
