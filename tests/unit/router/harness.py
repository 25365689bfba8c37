"""router's handler and periodic pass over the in-memory store, as the kit would drive them
(fresh events that fit, in stream order, one transaction per batch)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from prometheus_client import CollectorRegistry

from services.router.core.dispatch import Ticket
from services.router.handlers.events import Routing, routed_records
from services.router.handlers.waiting import assign_tier
from services.router.metrics import RouterMetrics
from shared.charter import Charter
from shared.delivery.events import EventBatch
from shared.envelope import Envelope, decode
from shared.lifecycle import Lifecycle, Stale, advance
from tests.unit.router.fakes import FakeDatabase, FakeStore


class Harness:
    def __init__(self, charter: Charter, now: datetime) -> None:
        self.charter, self.now = charter, now
        self.db = FakeDatabase()
        self.db.sync_roster(charter)
        self.routing = Routing(
            charter, "fake", "events", RouterMetrics(CollectorRegistry()), store=lambda conn, schema: FakeStore(conn)
        )
        self.lifecycles: dict[str, Lifecycle] = {}
        self.emitted: list[Envelope] = []  # every ticket.routed, in emission order

    def apply(self, *events: Envelope) -> list[Envelope]:
        """One batch; events that no longer fit the ticket are dropped, as the kit does."""
        fitting = []
        for envelope in events:
            verdict = advance(self.lifecycles.get(envelope.ticket_id), envelope.type)
            if not isinstance(verdict, Stale):
                self.lifecycles[envelope.ticket_id] = verdict
                fitting.append(envelope)
        effects = asyncio.run(self.routing.apply(self.db, EventBatch(fitting, [], 0, self.now)))
        self.ignored = effects.ignored
        return self._emit([decode(r.key, r.value, r.headers) for r in effects.records])

    def tick(self) -> list[Envelope]:
        """The periodic pass at `now`, every tier."""

        async def run():
            store = FakeStore(self.db)
            return [
                routed
                for tier in self.charter.ladder
                for routed in (await assign_tier(store, self.charter, tier, self.now)).routed
            ]

        records = routed_records(asyncio.run(run()), self.now, "events")
        return self._emit([decode(r.key, r.value, r.headers) for r in records])

    def ticket(self, ticket_id: str) -> Ticket:
        return self.db.tickets[ticket_id]

    def _emit(self, envelopes: list[Envelope]) -> list[Envelope]:
        self.emitted += envelopes
        return envelopes


def summary(envelope: Envelope) -> tuple:
    """(ticket, tier, queue, assignee, reason, communication owner) of a ticket.routed."""
    e = envelope.event
    return (
        e.ticket_id,
        e.tier.value,
        e.queue,
        e.assignee,
        e.reason.value,
        e.communication_owner.value if e.communication_owner else None,
    )
