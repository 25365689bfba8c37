"""The intake use case: decide a batch of commands against stored state, in one transaction.

Read state, decide (pure core), store state + outbox together. Invariants:
1. No dual write: ticket state, the command's outcome and the resulting records (events
   and dead letters) commit atomically; the outbox relay publishes them afterwards.
2. One ticket's commands are serialised across batches and replicas by a transaction-scoped
   lock per ticket, so a batch sees the state every earlier batch left; likewise one
   idempotency key's uses (so concurrent first uses of a key on two tickets cannot both
   be taken as new).
3. Commands from the topic are remembered by id whatever their outcome, so a redelivered
   record (crash after commit, before the offset commit) changes nothing.
4. A redriven dead letter (`Submission.redrive`) is decided again when its remembered
   outcome is a dead letter, and takes effect at most once: its acceptance replaces the
   remembered dead letter, so a second redrive replays it (no second event).
5. Order across partitions: a topic command for a ticket intake does not know (its create
   may sit unread on another partition) is not final while it is younger than `wait`: it
   waits (the `waiting` table) and is retried in arrival order; a later topic command for a
   ticket with a waiting command waits behind it. Past `wait` it is dead-lettered
   `unknown_ticket`. An `unknown_ticket` outcome is never remembered, so the same command
   id sent again (or redriven) is decided again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.intake.core.commands import CreateTicketRequest
from services.intake.core.tickets import (
    Accepted,
    Decision,
    PriorCommand,
    RejectCode,
    Rejected,
    Submission,
    Ticket,
    decide,
)
from shared.delivery.failures import Kind, classify
from shared.delivery.records import OutboxRecord, Rejection, SourceRecord, dead_letter
from shared.envelope import derive_id, encode
from shared.topics import Topics

log = logging.getLogger(__name__)
SERVICE = "intake"
_LAST = 2**62  # the place in line of a command parked in this batch: after every stored one
DEAD_LETTERED = "dead_letter"


@dataclass(frozen=True, slots=True)
class Poison:
    """A topic record that is not a valid command at all (not JSON, unknown type, too large...)."""

    command_id: str
    source: SourceRecord
    rejection: Rejection
    waiting: int | None = None  # its row in `waiting`, when it is a waiting command read again


@dataclass(frozen=True, slots=True)
class FromTopic:
    """A valid command read from the topic; rejections of it are dead-lettered."""

    submission: Submission
    source: SourceRecord
    waiting: int | None = None  # its row in `waiting`, when it is a waiting command read again


Entry = Submission | FromTopic | Poison


@dataclass(frozen=True, slots=True)
class Outcome:
    decisions: list[Decision]
    dead_letters: list[str]  # reason codes of the dead letters staged
    waiting: int = 0  # topic commands that wait for their ticket (new ones)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A topic command parked until its ticket is known (service invariant 5)."""

    command_id: str
    ticket_id: str
    first_seen: datetime
    source: SourceRecord
    seq: int | None = None  # None until stored


@dataclass(slots=True)
class Parking:
    """What a transaction changes in `waiting`."""

    add: list[Waiting] = field(default_factory=list)
    done: list[int] = field(default_factory=list)  # seqs decided (accepted, rejected or dead-lettered)


class Transaction(Protocol):
    async def lock(self, ticket_ids: Sequence[str], command_ids: Sequence[str]) -> None: ...
    async def load(
        self, ticket_ids: Sequence[str], command_ids: Sequence[str]
    ) -> tuple[dict[str, Ticket], dict[str, PriorCommand]]: ...
    async def waiting(self, ticket_ids: Sequence[str]) -> list[Waiting]: ...
    async def save(
        self,
        tickets: Sequence[Ticket],
        commands: dict[str, PriorCommand],
        outbox: Sequence[OutboxRecord],
        parking: Parking | None = None,
    ) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...


async def process(
    store: Store,
    entries: Sequence[Entry],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    topics: Topics = Topics(),
    wait: timedelta = timedelta(0),
) -> Outcome:
    """Decide and store `entries` in order; one decision per entry. A topic command for an
    unknown ticket waits up to `wait` for it (invariant 5)."""
    submissions = [_submission(entry) for entry in entries]
    ticket_ids = sorted({sub.ticket_id for sub in submissions if sub is not None})
    command_ids = [_command_id(entry) for entry in entries]
    repeatable = [cid for cid, sub in zip(command_ids, submissions, strict=True) if sub is None or sub.repeatable]
    # A client-chosen id may come again on another ticket (or as poison, with no ticket to lock);
    # a record's own position names one ticket, whose lock already serialises it.
    client_chosen = [
        cid
        for cid, sub in zip(command_ids, submissions, strict=True)
        if sub is None or (sub.repeatable and sub.record_fingerprint is None)
    ]

    async with store.transaction() as tx:
        await tx.lock(ticket_ids, client_chosen)
        tickets, priors = await tx.load(ticket_ids, repeatable)
        from_topic = [e for e in entries if isinstance(e, FromTopic)]
        # Per ticket, the seqs of its waiting commands not decided yet; command ids already waiting.
        queued: dict[str, list[int]] = {}
        parked_ids: set[str] = set()
        if from_topic:
            for row in await tx.waiting(sorted({e.submission.ticket_id for e in from_topic})):
                queued.setdefault(row.ticket_id, []).append(row.seq or 0)
                parked_ids.add(row.command_id)
        parking = Parking()
        changed: dict[str, Ticket] = {}
        remembered: dict[str, PriorCommand] = {}
        outbox: list[OutboxRecord] = []
        dead: list[str] = []
        decisions: list[Decision] = []
        for entry, submission, command in zip(entries, submissions, command_ids, strict=True):
            prior = priors.get(command)
            if isinstance(entry, Poison):
                if entry.waiting is not None:  # e.g. its key was revoked while it waited
                    parking.done.append(entry.waiting)
                decision: Decision = Rejected(RejectCode.MALFORMED, entry.rejection.detail)
                if prior is None:
                    remembered[command] = priors[command] = _dead_letter(
                        entry.source,
                        command,
                        entry.rejection,
                        record_fingerprint(entry.source),
                        outbox,
                        now(),
                        topics.dead_letter,
                    )
                    dead.append(entry.rejection.code)
                decisions.append(decision)
                continue
            assert submission is not None
            if isinstance(entry, FromTopic) and not _decide_now(entry, queued, parked_ids, parking):
                decisions.append(Rejected(RejectCode.UNKNOWN_TICKET, "waiting for the ticket"))
                continue
            if submission.redrive and prior is not None and prior.event_type == DEAD_LETTERED:
                prior = None  # the cause may be fixed: decide again; an acceptance replaces the dead letter
            decision = decide(tickets.get(submission.ticket_id), prior, submission)
            if isinstance(decision, Accepted):
                tickets[submission.ticket_id] = changed[submission.ticket_id] = decision.ticket
                record = encode(decision.envelope)
                outbox.append(OutboxRecord(topics.events, record.key, record.value, record.headers))
                if submission.repeatable:
                    remembered[command] = priors[command] = PriorCommand(
                        submission.fingerprint, submission.ticket_id, decision.envelope.id, decision.envelope.type
                    )
            elif (
                isinstance(decision, Rejected)
                and isinstance(entry, FromTopic)
                and decision.code is RejectCode.UNKNOWN_TICKET
                and now() - submission.received_at < wait
            ):  # its create may be unread on another partition: wait, and later commands for it wait behind
                if entry.waiting is None:
                    parking.add.append(Waiting(command, submission.ticket_id, submission.received_at, entry.source))
                    parked_ids.add(command)
                    queued.setdefault(submission.ticket_id, []).append(_LAST)
                else:  # still waits, still first in line
                    parking.done.remove(entry.waiting)
                    queued.setdefault(submission.ticket_id, []).insert(0, entry.waiting)
            elif isinstance(decision, Rejected) and isinstance(entry, FromTopic):
                rejection = Rejection(decision.code.value, f"{decision.code.value}: {decision.reason}")
                first = _dead_letter(
                    entry.source,
                    command,
                    rejection,
                    submission.fingerprint,
                    outbox,
                    now(),
                    topics.dead_letter,
                    ticket_id=submission.ticket_id,
                )
                dead.append(rejection.code)
                # A reused id keeps its first outcome; the clash is dead-lettered each time. An unknown
                # ticket is no final outcome: the same command may come again once the ticket exists.
                if prior is None and decision.code is not RejectCode.UNKNOWN_TICKET:
                    remembered[command] = priors[command] = first
            decisions.append(decision)
        await tx.save(list(changed.values()), remembered, outbox, parking)
    return Outcome(decisions, dead, len(parking.add))


def _decide_now(entry: FromTopic, queued: dict[str, list[int]], parked: set[str], parking: Parking) -> bool:
    """May this topic command be decided now, or must it wait behind its ticket's waiting
    commands (invariant 5)? A waiting command read again is decided when it heads its
    ticket's queue; a new one only when nothing waits for its ticket."""
    ticket = entry.submission.ticket_id
    ahead = queued.setdefault(ticket, [])
    if entry.waiting is not None:
        if entry.waiting not in ahead:
            return False  # decided meanwhile (another replica): nothing to do
        if min(ahead) != entry.waiting:
            return False  # an older command for the ticket still waits
        ahead.remove(entry.waiting)
        parking.done.append(entry.waiting)
        return True
    if isinstance(entry.submission.request, CreateTicketRequest):
        return True  # what they wait for never waits
    if ahead or entry.submission.command_id in parked:
        if entry.submission.command_id not in parked:  # behind the others, in arrival order
            parking.add.append(Waiting(entry.submission.command_id, ticket, entry.submission.received_at, entry.source))
            parked.add(entry.submission.command_id)
            ahead.append(_LAST)
        return False
    return True


def _command_id(entry: Entry) -> str:
    if isinstance(entry, Poison):
        return entry.command_id
    return entry.submission.command_id if isinstance(entry, FromTopic) else entry.command_id


def _submission(entry: Entry) -> Submission | None:
    if isinstance(entry, Submission):
        return entry
    if isinstance(entry, FromTopic):
        return entry.submission
    return None


def record_fingerprint(source: SourceRecord) -> str:
    return hashlib.sha256(source.value or b"").hexdigest()


def _dead_letter(
    source: SourceRecord,
    command: str,
    rejection: Rejection,
    fingerprint: str,
    outbox: list[OutboxRecord],
    at: datetime,
    topic: str,
    ticket_id: str = "",
) -> PriorCommand:
    outbox.append(dead_letter(source, rejection, topic=topic, service=SERVICE, at=at))
    log.warning("command dead-lettered", extra={"position": source.position, "code": rejection.code})
    return PriorCommand(fingerprint, ticket_id, derive_id(command, DEAD_LETTERED), DEAD_LETTERED)


class QueueFull(Exception):
    """The HTTP path has `max_queue` commands waiting already: the caller answers 503."""


class Batcher:
    """Group commit for the HTTP path: concurrent requests share one transaction.

    A request waits only for the transaction that carries it; while one batch commits, the
    next one fills up, so batches grow with load and latency stays flat."""

    def __init__(
        self,
        run_batch: Callable[[list[Entry]], Awaitable[list[Decision]]],
        *,
        max_batch: int = 256,
        workers: int = 2,
        max_queue: int = 4096,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: asyncio.Queue[tuple[Entry, asyncio.Future[Decision]] | None] = asyncio.Queue()
        self._workers = [asyncio.create_task(self._work(), name=f"intake-batcher-{i}") for i in range(workers)]

    async def submit(self, submission: Entry) -> Decision:
        if self._queue.qsize() >= self._max_queue:  # bounded: memory and latency stay bounded under overload
            raise QueueFull(f"{self._max_queue} commands queued")
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((submission, future))
        return await future

    async def _work(self) -> None:
        while (first := await self._queue.get()) is not None:
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                if (item := self._queue.get_nowait()) is None:
                    self._queue.put_nowait(None)  # leave the stop signal for this worker's next turn
                    break
                batch.append(item)
            live = [(sub, future) for sub, future in batch if not future.done()]
            if live:
                await self._settle(live)

    async def _settle(self, live: list[tuple[Entry, asyncio.Future[Decision]]]) -> None:
        """Run one batch. A request's own failure would fail again: the batch is split until
        the request that fails is alone, so it never takes a neighbour with it. A transient or
        systemic failure is everyone's: every waiter learns it at once."""
        try:
            decisions = await self._run_batch([sub for sub, _ in live])
        except Exception as error:  # every waiter learns why; the worker lives on
            if len(live) > 1 and classify(error) is Kind.POISON:
                middle = len(live) // 2
                await self._settle(live[:middle])
                await self._settle(live[middle:])
                return
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), decision in zip(live, decisions, strict=True):
            if not future.done():
                future.set_result(decision)

    async def close(self) -> None:
        """Finish every queued and in-flight batch, then stop the workers."""
        for _ in self._workers:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._workers)
