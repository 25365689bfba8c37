"""The ticket-events handler: load the batch's tickets, let the core decide, store, emit.

The kit hands over fresh, deduplicated events that fit the shared staleness rule, in
stream order, with the batch's ticket locks held; what `apply` writes and the records it
returns commit in the kit's transaction.
"""

from __future__ import annotations

from collections import Counter

import asyncpg

from services.escalation.adapters.store import EscalationStore, outbox_records
from services.escalation.core.tickets import apply_events
from services.escalation.metrics import EscalationMetrics
from shared.charter import Charter
from shared.delivery.events import Effects, EventBatch
from shared.events import (
    TicketCreated,
    TicketEscalationRequested,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
    TicketRouted,
)


class EscalationHandler:
    # ticket.reopened needs no handling: the resolution ended the visit, and the routing
    # after the reopen starts the new cycle's visit.
    types = frozenset(
        {
            TicketCreated.TYPE,
            TicketRouted.TYPE,
            TicketResponded.TYPE,
            TicketEscalationRequested.TYPE,
            TicketReturnRequested.TYPE,
            TicketResolved.TYPE,
        }
    )

    def __init__(self, charter: Charter, store: EscalationStore, events_topic: str, metrics: EscalationMetrics) -> None:
        self._charter, self._store, self._topic, self._metrics = charter, store, events_topic, metrics

    async def apply(self, conn: asyncpg.Connection, batch: EventBatch) -> Effects:
        if not batch.events:
            return Effects()
        tickets = await self._store.load(conn, {event.ticket_id for event in batch.events})
        changes = apply_events(self._charter, tickets, batch.events, batch.now)
        await self._store.save(conn, changes, batch.partitions)
        return Effects(
            records=outbox_records(self._topic, changes.emit),
            ignored=changes.ignored,
            on_commit=[lambda: self._count(changes.verdicts)],
        )

    def _count(self, verdicts: Counter[str]) -> None:
        for verdict, count in verdicts.items():
            self._metrics.handoffs.labels(verdict).inc(count)
