"""The router's event handler: load, decide (core), store, emit.

The kit hands `apply` fresh events that fit, in stream order, inside the batch's transaction
with the batch's ticket locks held; the `ticket.routed` records returned are staged in that
same transaction.

Lock order (no cycles, so no deadlocks): ticket locks (the kit, sorted), then tier locks
(`RouterStore.lock_desks`: the tiers' agent rows, one statement, sorted); nobody takes a
ticket lock while holding a tier lock. A ticket's row changes under its ticket lock (its own
events) and under its tier's lock (its assignment), and its events take both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.router.adapters.store import RouterStore
from services.router.core.assignment import open_desk
from services.router.core.dispatch import CREATED, Routed, dispatch, touched, wanted
from services.router.metrics import RouterMetrics
from shared.charter import Charter
from shared.delivery.events import Effects, EventBatch
from shared.delivery.records import OutboxRecord
from shared.envelope import CONTENT_TYPE, SPEC_VERSION, Headers, format_time
from shared.events import TicketRouted

SOURCE = "ladder/router"
_SPEC_VERSION, _ROUTED, _SOURCE, _CONTENT_TYPE = (
    SPEC_VERSION.encode(),
    TicketRouted.TYPE.encode(),
    SOURCE.encode(),
    CONTENT_TYPE.encode(),
)


def routed_records(routed: Sequence[Routed], at: datetime, topic: str) -> list[OutboxRecord]:
    """The outbox records of `routed`: exactly what `shared.envelope.encode` makes of each
    `TicketRouted` envelope (test: test_routed_records_are_what_encode_makes), built in one
    pass because this runs under the tier locks. The values come from the validated charter
    and catalogue enums, so the body needs no second validation."""
    time = format_time(at).encode()
    records = []
    for r in routed:
        key = r.ticket_id.encode()
        value = orjson.dumps(
            {
                "ticket_id": r.ticket_id,
                "tier": r.tier,
                "queue": r.queue,
                "assignee": r.assignee,
                "reason": r.reason,
                "communication_owner": r.communication_owner,
            }
        )
        headers: Headers = [
            ("ce_specversion", _SPEC_VERSION),
            ("ce_id", r.event_id.encode()),
            ("ce_type", _ROUTED),
            ("ce_source", _SOURCE),
            ("ce_time", time),
            ("ce_subject", key),
            ("ce_correlationid", r.correlation_id.encode()),
            ("content-type", _CONTENT_TYPE),
            ("ce_causationid", r.causation_id.encode()),
        ]
        if r.cycle is not None:
            headers.append(("ce_cycle", str(r.cycle).encode()))
        records.append(OutboxRecord(topic, key, value, headers))
    return records


class Routing:
    """The `EventHandler` for the ticket events router acts on."""

    types = frozenset(
        {
            "ticket.created",
            "ticket.escalated",
            "ticket.bounced",
            "ticket.resolved",
            "ticket.reopened",
            "ticket.claim_requested",
        }
    )

    def __init__(
        self,
        charter: Charter,
        schema: str,
        topic: str,
        metrics: RouterMetrics,
        store: Callable[[Any, str], RouterStore] = RouterStore,
    ) -> None:
        self.charter, self.schema, self.topic, self.metrics = charter, schema, topic, metrics
        self._store = store  # the unit tests' fake keeps the same contract (tests/unit/router/store_contract.py)

    async def apply(self, conn: asyncpg.Connection, batch: EventBatch) -> Effects:
        events = batch.events
        if not events:
            return Effects()
        store = self._store(conn, self.schema)
        known = [envelope.ticket_id for envelope in events if envelope.type != CREATED]
        tiers = touched(self.charter, events, await store.tiers_of(known) if known else {})
        seats = await store.lock_desks(tiers)
        desks = {tier: open_desk(self.charter, tier, batch.now, seats.get(tier, {})) for tier in tiers}
        tickets, waiting = await store.load(
            known, {tier: (count, desks[tier].live) for tier, count in wanted(desks, events).items()}
        )
        outcome = dispatch(self.charter, events, tickets, desks, waiting)
        await store.save(outcome.tickets, desks.values())
        return Effects(
            records=routed_records(outcome.routed, batch.now, self.topic),
            ignored=outcome.ignored,
            on_commit=[lambda: self.metrics.count(outcome.routed)],
        )
