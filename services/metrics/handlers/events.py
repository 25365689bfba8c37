"""The metrics service's EventHandler: every event of the catalogue, projected into KPI
samples in the kit's transaction (which has already claimed the ids and judged staleness).

Invariants (tests: tests/integration/metrics/test_oracle.py, test_crash_and_replicas.py):
1. Effectively once: state, samples and the ignored counts commit with the inbox claims, so
   a redelivery, a replay or a restart adds nothing; metrics emits no records.
2. What the kit left out is counted in the projection, so it survives restarts and is the
   same on every replica: support_events_ignored_total{reason="duplicate"|"stale"|
   "tier_claim_mismatch"} (the last: a response or return whose tier does not fit the
   ticket's owners, `shared.lifecycle` invariant 5).
"""

from __future__ import annotations

import asyncpg

from services.metrics.adapters.read_store import ReadStore
from services.metrics.adapters.store import ProjectionStore
from services.metrics.core.visits import ignored, project_batch
from shared.delivery.events import Effects, EventBatch
from shared.events import EVENT_TYPES
from shared.lifecycle import TIER_CLAIM_MISMATCH


class KpiProjection:
    types = frozenset(EVENT_TYPES)

    def __init__(self, store: ProjectionStore, read: ReadStore | None = None) -> None:
        self.store, self.read = store, read

    async def apply(self, conn: asyncpg.Connection, batch: EventBatch) -> Effects:
        states = await self.store.load(conn, {envelope.ticket_id for envelope in batch.events})
        changed, samples = project_batch(states, batch.events)
        samples += (
            ignored("duplicate", batch.duplicates, batch.now)
            + ignored("stale", len(batch.stale), batch.now)
            + ignored(TIER_CLAIM_MISMATCH, batch.mismatched, batch.now)
        )
        await self.store.save(conn, changed, samples)
        if self.read is not None:
            await self.read.save(conn, batch.events)
        return Effects()
