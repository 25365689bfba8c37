"""An in-memory stand-in for `EscalationStore` with the same guards as its SQL (arming
inserts only what is absent; cancelling and settling touch only pending timers; claiming
takes only timers due by their partition's stream time), so the
core and the firing pass can be driven without I/O. The PostgreSQL store is held to the
same scenarios in tests/integration/escalation/test_timer_store.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from services.escalation.core.sla import Firing, SlaTimer, TimerState
from services.escalation.core.tickets import Changes, Ticket


class StagingConnection:
    """Enough of a connection for `shared.delivery.outbox.stage`: it records what is staged."""

    def __init__(self) -> None:
        self.staged: list[tuple[object, ...]] = []

    async def execute(self, _statement: str, *arguments: object) -> None:
        self.staged.append(arguments)


class MemoryStore:
    schema = "memory"

    def __init__(self) -> None:
        self.tickets: dict[str, Ticket] = {}
        self.timers: dict[tuple[str, str], SlaTimer] = {}
        self.partitions: dict[tuple[str, str], int] = {}  # each timer's partition

    async def load(self, _conn: object, ticket_ids: Iterable[str]) -> dict[str, Ticket]:
        return {t: self.tickets[t] for t in ticket_ids if t in self.tickets}

    async def save(self, _conn: object, changes: Changes, partitions: Mapping[str, int]) -> None:
        self.tickets.update(changes.tickets)
        before = dict(self.timers)  # one SQL statement: cancelling sees only what was there before
        for key, timer in before.items():
            if (timer.ticket_id, timer.kind) in changes.cancels:
                self.timers[key] = timer.settle(TimerState.CANCELLED)
        for key, timer in changes.timers.items():
            if key not in self.timers:
                self.timers[key] = timer
                self.partitions[key] = partitions[timer.ticket_id]

    async def claim_due(self, _conn: object, stream_time: Mapping[int, datetime], limit: int) -> list[str]:
        due = sorted(
            (
                t
                for key, t in self.timers.items()
                if t.state is TimerState.PENDING
                and self.partitions[key] in stream_time
                and t.due_at <= stream_time[self.partitions[key]]
            ),
            key=lambda t: t.due_at,
        )[:limit]
        return list(dict.fromkeys(t.ticket_id for t in due))

    async def try_lock(self, _conn: object, ticket_ids: Sequence[str]) -> list[str]:
        return list(ticket_ids)

    async def pending(
        self, _conn: object, ticket_ids: Sequence[str]
    ) -> list[tuple[Ticket, int | None, list[SlaTimer]]]:
        found = []
        for ticket in ticket_ids:
            mine = {k: x for k, x in self.timers.items() if x.ticket_id == ticket and x.state is TimerState.PENDING}
            if mine:
                found.append((self.tickets[ticket], self.partitions[next(iter(mine))], list(mine.values())))
        return found

    async def settle(self, _conn: object, firings: Sequence[tuple[str, Firing]]) -> None:
        for ticket_id, firing in firings:
            for timer in firing.settled:
                if self.timers[timer.key].state is TimerState.PENDING:
                    self.timers[timer.key] = timer
            if firing.owner is not None:
                self.tickets[ticket_id] = replace(self.tickets[ticket_id], owner=firing.owner)

    async def all_timers(self) -> list[SlaTimer]:
        return list(self.timers.values())
