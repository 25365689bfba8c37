"""Consuming `support.ticket-events`: what router, escalation and metrics share.

A batch of records becomes, in one transaction: per-ticket locks, the claim of every
event id (`inbox`), the shared staleness verdict (`shared.lifecycle`), the service's own
effects (`EventHandler.apply`) and the records they cause, staged in the outbox. Only
then is the offset committed.

Invariants (tests: tests/integration/kit/):
1. Effectively once: a redelivered, replayed or duplicated event is claimed already and
   reaches no handler; a duplicate at a new position is counted, once.
2. One staleness rule for all: an event that no longer fits the ticket (`shared.lifecycle`:
   its status, or its cycle) is never applied by any consumer, and is counted. A handler
   gets every event with its cycle known (an event without `ce_cycle` gets the ticket's
   current one), so what it emits because of the event carries the cause's cycle.
3. Poison is dead-lettered verbatim with its reason, once per record, in the same
   transaction as its batch-mates' effects; types this service does not handle are skipped
   unread (another service reads them), types nobody knows are poison, and so is an event
   whose `ce_source` may not emit its type (`shared.emitters`; test: tests/integration/
   router/test_rules.py, the forged escalation).
5. One rule for tier claims (`shared.lifecycle` invariant 5): a response or return request
   naming a tier that neither owns the ticket nor (for a response) speaks to its customer
   at that point of the stream reaches no handler and is counted `tier_claim_mismatch`
   (test: tests/integration/test_tier_claims.py). A consumer that handles a claim type
   also reads the routings, to know the owners; router handles none.
4. Per ticket, events are applied in stream order; a batch holds its tickets' locks, so a
   service's other writers (e.g. SLA timers) never interleave with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import asyncpg

from shared.delivery.inbox import Read, claim_and_read
from shared.delivery.locks import tickets_locked
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.outbox import stage_arguments, stage_statement
from shared.delivery.records import OutboxRecord, Rejection, SourceRecord, dead_letter
from shared.emitters import not_allowed
from shared.envelope import Envelope, EnvelopeError, decode_attributes, header_map
from shared.events import EVENT_TYPES, Tier
from shared.lifecycle import (
    CLAIM_TYPES,
    LIFECYCLE_TYPES,
    OWNER_TYPES,
    TIER_CLAIM_MISMATCH,
    Lifecycle,
    Stale,
    Status,
    judge,
)

INVALID_EVENT = "invalid_event"
SOURCE_NOT_ALLOWED = "source_not_allowed"


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What a handler gets: fresh events that fit, of the types it handles, in stream order;
    and, for projections that count them, what was ignored."""

    events: list[Envelope]
    stale: list[tuple[Envelope, Stale]]
    duplicates: int
    now: datetime
    # The partition each ticket's records came from (one per ticket: keyed by ticket id), for
    # state that follows the partition's stream time (escalation's SLA timers).
    partitions: Mapping[str, int] = field(default_factory=dict)
    mismatched: int = 0  # fresh events whose tier claim did not fit the ticket (ignored)


@dataclass
class Effects:
    """What a handler did: records to publish, events it left without effect (by reason),
    and what to do once it is committed (e.g. count it: a rolled-back try counts nothing)."""

    records: list[OutboxRecord] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    on_commit: list[Callable[[], None]] = field(default_factory=list)


class EventHandler(Protocol):
    types: frozenset[str]

    async def apply(self, conn: asyncpg.Connection, batch: EventBatch) -> Effects: ...


class EventConsumer:
    """`process` for a `BatchConsumer` on the events topic (see the invariants above)."""

    def __init__(
        self,
        *,
        service: str,
        schema: str,
        handler: EventHandler,
        metrics: DeliveryMetrics,
        pool: Callable[[], asyncpg.Pool],
        dead_letter_topic: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        unknown = handler.types - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"{service} handles types outside the catalogue: {sorted(unknown)}")
        self.service, self.schema, self.handler = service, schema, handler
        self.dead_letter_topic = dead_letter_topic
        self._metrics = metrics
        self._pool = pool
        self._clock = clock
        tracked = LIFECYCLE_TYPES | (OWNER_TYPES if handler.types & CLAIM_TYPES else frozenset())
        self._unread = frozenset(EVENT_TYPES) - handler.types - tracked  # another service's
        self._unread_raw = {name.encode() for name in self._unread}
        # Read with the claim (one round trip), and written with the outbox records (another).
        self._lifecycles = f"SELECT {_LIFECYCLE} FROM {schema}.lifecycle WHERE ticket_id = ANY($3::text[])"
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(_LIFECYCLE_COLUMNS, start=1))
        updates = ", ".join(f"{name} = excluded.{name}" for name, _ in _LIFECYCLE_COLUMNS[1:])
        self._save = (
            f"WITH moved AS (INSERT INTO {schema}.lifecycle ({_LIFECYCLE}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT (ticket_id) DO UPDATE SET {updates}) "
            f"{stage_statement(schema, first=len(_LIFECYCLE_COLUMNS) + 1)}"
        )

    def read(
        self, records: Sequence[SourceRecord]
    ) -> tuple[list[tuple[Envelope, SourceRecord]], list[tuple[SourceRecord, Rejection]]]:
        """Envelopes worth this service's time, and poison. Pure."""
        events, poison = [], []
        for record in records:
            # The headers are read once, for the type and for the envelope.
            try:
                attributes = header_map(record.headers)
            except EnvelopeError as error:  # an attribute that is not UTF-8
                if record.header("ce_type") not in self._unread_raw:
                    poison.append((record, Rejection(INVALID_EVENT, str(error))))
                continue
            ce_type = attributes.get("ce_type")
            if ce_type in self._unread or (ce_type is None and record.header("ce_type") in self._unread_raw):
                continue  # the second test: a header name in other letter case
            try:
                envelope = decode_attributes(attributes, record.key, record.value)
            except EnvelopeError as error:
                poison.append((record, Rejection(INVALID_EVENT, str(error))))
                continue
            if forged := not_allowed(envelope.source, envelope.type):
                poison.append((record, Rejection(SOURCE_NOT_ALLOWED, forged)))
            else:
                events.append((envelope, record))
        return events, poison

    async def process(self, records: Sequence[SourceRecord]) -> None:
        events, poison = self.read(records)
        if not events and not poison:
            return
        now = self._clock()
        tickets = list({envelope.ticket_id: None for envelope, _ in events})
        async with self._pool().acquire() as conn, tickets_locked(conn, self.schema, tickets):
            claims, rows = await claim_and_read(
                conn,
                self.schema,
                [(envelope.id, record.identity) for envelope, record in events]
                + [(record.identity_id, record.identity) for record, _ in poison],
                Read(self._lifecycles, _LIFECYCLE_COLUMNS, [tickets]),
            )
            fresh = [envelope for index, (envelope, _) in enumerate(events) if index in claims.fresh]
            state = {row["ticket_id"]: _lifecycle(row) for row in rows}
            applied, stale, mismatched, moved = self._judge(state, fresh)
            partitions = {envelope.ticket_id: record.partition for envelope, record in events}
            effects = await self.handler.apply(
                conn, EventBatch(applied, stale, claims.duplicates, now, partitions, mismatched)
            )
            rejected = [
                (record, rejection)
                for index, (record, rejection) in enumerate(poison, start=len(events))
                if index in claims.fresh
            ]
            outbox = effects.records + [
                dead_letter(record, rejection, topic=self.dead_letter_topic, service=self.service, at=now)
                for record, rejection in rejected
            ]
            if moved or outbox:
                await conn.execute(
                    self._save, *_lifecycle_columns({t: state[t] for t in moved}), *stage_arguments(outbox)
                )
        ignored = effects.ignored + Counter(
            {
                "duplicate": claims.duplicates,
                "redelivered": claims.redelivered,
                "stale": len(stale),
                TIER_CLAIM_MISMATCH: mismatched,
            }
        )
        for reason, count in ignored.items():
            if count:
                self._metrics.events_ignored.labels(reason).inc(count)
        for _, rejection in rejected:
            self._metrics.dead_letters.labels(rejection.code).inc()
        for committed in effects.on_commit:
            committed()

    def _judge(
        self, state: dict[str, Lifecycle], fresh: list[Envelope]
    ) -> tuple[list[Envelope], list[tuple[Envelope, Stale]], int, set[str]]:
        """Apply the shared lifecycle rule (staleness, tier claims) in stream order, moving
        `state`; the events to apply, the stale, the mismatched count and the tickets moved."""
        applied, stale, mismatched, moved = [], [], 0, set()
        for envelope in fresh:
            verdict = judge(state.get(envelope.ticket_id), envelope.event, envelope.cycle)
            if isinstance(verdict, Stale):
                stale.append((envelope, verdict))
                continue
            if verdict is None:
                mismatched += 1
                continue
            if verdict != state.get(envelope.ticket_id):
                state[envelope.ticket_id] = verdict
                moved.add(envelope.ticket_id)
            if envelope.type in self.handler.types:
                applied.append(envelope if envelope.cycle is not None else replace(envelope, cycle=verdict.cycle))
        return applied, stale, mismatched, moved


_LIFECYCLE_COLUMNS = (
    ("ticket_id", "text"), ("status", "text"), ("rated", "boolean"), ("cycle", "integer"), ("owner", "text"),
    ("communication_owner", "text"), ("owners_known", "boolean"),
)  # fmt: skip
_LIFECYCLE = ", ".join(name for name, _ in _LIFECYCLE_COLUMNS)


def _lifecycle(row: asyncpg.Record) -> Lifecycle:
    return Lifecycle(
        Status(row["status"]),
        row["rated"],
        row["cycle"],
        Tier(row["owner"]) if row["owner"] else None,
        Tier(row["communication_owner"]) if row["communication_owner"] else None,
        row["owners_known"],
    )


def _lifecycle_columns(moved: Mapping[str, Lifecycle]) -> tuple[list[object], ...]:
    return (
        list(moved),
        [lifecycle.status.value for lifecycle in moved.values()],
        [lifecycle.rated for lifecycle in moved.values()],
        [lifecycle.cycle for lifecycle in moved.values()],
        [lifecycle.owner for lifecycle in moved.values()],
        [lifecycle.communication_owner for lifecycle in moved.values()],
        [lifecycle.owners_known for lifecycle in moved.values()],
    )
