"""Scenarios for "a timer fires at most once whatever the order of cancel, re-arm, expiry
and redelivery", and the checks every store must pass (in memory: test_timers_once.py; on
PostgreSQL with racing firing passes: tests/integration/escalation/test_timer_store.py).

A scenario is a list of steps on two tickets, each on a partition of its own: events
(routings, responses, handoff and return requests, resolutions, reopens), clock moves
(after what was sent is read, or not: a lapse), firing passes (twice in a row: a second
replica), batch cuts, and redeliveries of an earlier event that skip the inbox (so only
the store's own guards stand between a re-armed timer and a second firing). Passes run on
stream time: a plain pass after everything sent was read (each partition caught up: its
stream time is now); a pass *behind* before the events sent since the last batch were
read, on the partitions one replica owns (a partition with unread events has the time of
the last event read on it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import strategies as st

from services.escalation.core.sla import SlaTimer, TimerState
from services.escalation.core.tickets import Changes
from shared.envelope import Envelope, decode
from shared.events import EscalationReason, HandoffChecklist, Tier
from shared.lifecycle import Lifecycle, Stale, advance
from tests.unit.escalation import builders as b

TIERS = [Tier.L1, Tier.L2, Tier.L3]
HANDLED = frozenset(
    {
        "ticket.created",
        "ticket.routed",
        "ticket.responded",
        "ticket.escalation_requested",
        "ticket.return_requested",
        "ticket.resolved",
    }
)

event_step = st.one_of(
    st.tuples(st.just("routed"), st.sampled_from(TIERS)),
    st.tuples(st.just("responded"), st.sampled_from(TIERS)),
    st.tuples(st.just("handoff"), st.sampled_from([(Tier.L1, Tier.L2), (Tier.L2, Tier.L3), (Tier.L1, Tier.L3)])),
    st.tuples(st.just("sloppy_handoff"), st.just((Tier.L1, Tier.L2))),
    st.tuples(st.just("return"), st.sampled_from([Tier.L2, Tier.L3])),
    st.tuples(st.just("resolved"), st.sampled_from(TIERS)),
    st.tuples(st.just("reopened"), st.none()),
)
# The orders that matter most, spelled out (hypothesis finds them too, but not every run).
L1, L2 = Tier.L1, Tier.L2
CANONICAL = {
    "expiry, then a redelivered routing re-arms": [
        (0, ("routed", L1)),
        ("advance", 30),
        ("fire", False),
        (0, ("routed", L2)),
        ("cut", None),
        ("redeliver", 0),
    ],
    "cancel, then a redelivered routing re-arms": [
        (0, ("routed", L1)),
        (0, ("routed", L2)),
        ("cut", None),
        ("redeliver", 0),
        ("advance", 90),
        ("fire", True),
    ],
    "cancel after the deadline, before the pass": [
        (0, ("routed", L1)),
        ("advance", 7),
        (0, ("responded", L1)),
        ("fire", False),
    ],
    "armed and cancelled in one batch": [(0, ("routed", L1)), (0, ("responded", L1)), ("advance", 90), ("fire", False)],
    "expiry while a move is in flight": [
        (0, ("routed", L1)),
        (0, ("handoff", (L1, L2))),
        ("advance", 90),
        ("fire", True),
        (0, ("routed", L2)),
        ("advance", 90),
        ("fire", False),
    ],
    "answered while unread, due before it was read": [
        (0, ("routed", L1)),
        (1, ("routed", L1)),
        ("advance", 4),
        (0, ("responded", L1)),  # in time (first response is due at 5 min)...
        ("lapse", 3),  # ...but not read when the deadline passes (the service was down)
        ("fire_behind", (0, 1)),  # ticket 1 breaches; ticket 0's partition was not read past its deadline
        ("fire", False),  # the response is read: ticket 0 never breaches
    ],
    "one timer due by the stream time, the other only by the clock": [
        (0, ("routed", L1)),
        ("advance", 6),
        (0, ("reopened", None)),  # stale, but read: the partition is read until 6 min
        ("cut", None),
        (0, ("reopened", None)),  # not read yet
        ("lapse", 5),  # 11 min: past time in tier (10 min) by the clock, not by the stream
        ("fire_behind", (0,)),  # first response fires, time in tier waits
    ],
    "reopen starts a new cycle": [
        (0, ("routed", L1)),
        (0, ("resolved", L1)),
        (0, ("reopened", None)),
        (0, ("routed", L1)),
        ("redeliver", 0),
        ("advance", 90),
        ("fire", False),
    ],
}
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([0, 1]), event_step),
        st.tuples(st.just("advance"), st.integers(1, 90)),  # minutes (targets are 5 min to 4 h)
        st.tuples(st.just("lapse"), st.integers(1, 90)),  # the clock moves while nothing is read
        st.tuples(st.just("fire"), st.booleans()),  # True: a second pass right after (another replica)
        st.tuples(st.just("fire_behind"), st.sampled_from([(0, 1), (0,), (1,)])),  # the partitions owned
        st.tuples(st.just("redeliver"), st.integers(0, 40)),
        st.tuples(st.just("cut"), st.none()),
    ),
    max_size=40,
)


@dataclass
class Timeline:
    """Runs a scenario; `process` decides and stores one batch (with each ticket's
    partition) and returns its changes, `fire` runs firing passes at a time on the given
    stream time per partition and returns the records they staged (as encoded events)."""

    prefix: str
    process: Callable[[list[Envelope], datetime, Mapping[str, int]], Awaitable[Changes]]
    fire: Callable[[datetime, Mapping[int, datetime], bool], Awaitable[list[Envelope]]]
    now: datetime = b.T0
    read: dict[int, datetime] = field(default_factory=dict)  # per partition: the latest record time read
    seen: set[str] = field(default_factory=set)  # the inbox
    lifecycles: dict[str, Lifecycle] = field(default_factory=dict)
    applied: list[Envelope] = field(default_factory=list)
    pending: list[Envelope] = field(default_factory=list)
    emitted: list[tuple[Envelope, datetime]] = field(default_factory=list)  # (event, when it was emitted)
    # In order: ("event", applied envelope), then ("armed", its id) if it armed timers and
    # ("emitted", envelope) for what it caused; ("fire", the pass's stream time per
    # partition) followed by what the pass emitted.
    log: list[tuple[str, object]] = field(default_factory=list)
    serial: int = 0

    async def run(self, scenario: list[tuple[object, object]]) -> None:
        for ticket in (0, 1):
            self.pending.append(b.created(self._ticket(ticket), at=self.now))
        for what, detail in scenario:
            if what == "advance":
                await self._flush()
                self.now += timedelta(minutes=detail)
            elif what == "lapse":
                self.now += timedelta(minutes=detail)
            elif what == "fire":
                await self._flush()
                await self._fire(detail)
            elif what == "fire_behind":
                await self._fire(False, detail)
            elif what == "redeliver":  # an event that can change timers (a second created is always stale)
                # In a later batch than its first delivery, as Kafka redelivers: an id twice in
                # one batch would leave the log unable to tell which copy caused what.
                await self._flush()
                if again := [e for e in self.applied if e.type != "ticket.created"]:
                    self.pending.append(again[detail % len(again)])
            elif what == "cut":
                await self._flush()
            else:
                self.pending.append(self._event(self._ticket(what), *detail))
        await self._flush()
        self.now += timedelta(days=30)  # every armed timer is due by now: the last pass settles all
        await self._fire(False)

    async def _fire(self, twice: bool, owned: tuple[int, ...] = (0, 1)) -> None:
        unread = {self.partition(e.ticket_id) for e in self.pending}
        stream_time = {
            p: self.now if p not in unread else self.read[p] for p in owned if p not in unread or p in self.read
        }
        emitted = await self.fire(self.now, stream_time, twice)
        self.log += [("fire", stream_time), *(("emitted", e) for e in emitted)]
        self.emitted += [(e, stream_time[self.partition(e.ticket_id)]) for e in emitted]

    def _ticket(self, index: object) -> str:
        return f"{self.prefix}-{index}"

    def partition(self, ticket: str) -> int:
        """Ticket n's records are on partition n."""
        return int(ticket.rsplit("-", 1)[1])

    def _event(self, ticket: str, kind: str, detail: object) -> Envelope:
        self.serial += 1
        event_id = f"{self.prefix}-e{self.serial}"
        at = self.now
        match kind:
            case "routed":
                return b.routed(detail, ticket, at=at, event_id=event_id)
            case "responded":
                return _with_id(b.responded(detail, ticket, at=at), event_id)
            case "handoff" | "sloppy_handoff":
                source, target = detail
                checklist = b.COMPLETE if kind == "handoff" else HandoffChecklist()
                return _with_id(b.requested(source, target, ticket, checklist=checklist, at=at), event_id)
            case "return":
                return _with_id(b.returned(detail, ticket, at=at), event_id)
            case "resolved":
                return _with_id(b.resolved(detail, ticket, at=at), event_id)
        return _with_id(b.reopened(ticket, at=at), event_id)

    async def _flush(self) -> None:
        """The kit's part: inbox (a redelivery skips it on purpose), staleness, handled types."""
        batch, redelivered = [], {e.id for e in self.applied}
        for event in self.pending:
            partition = self.partition(event.ticket_id)
            self.read[partition] = max(self.read.get(partition, event.time), event.time)
            if event.id in self.seen and event.id not in redelivered:
                continue
            verdict = advance(self.lifecycles.get(event.ticket_id), event.type)
            if isinstance(verdict, Stale):
                continue
            self.lifecycles[event.ticket_id] = verdict
            if event.id not in self.seen:
                self.seen.add(event.id)
                self.applied.append(event)
            if event.type in HANDLED:
                batch.append(event)
        self.pending = []
        if batch:
            changes = await self.process(batch, self.now, {e.ticket_id: self.partition(e.ticket_id) for e in batch})
            emitted, arming = changes.emit, {t.armed_by for t in changes.timers.values()}
            self.emitted += [(e, self.now) for e in emitted]
            for event in batch:
                self.log.append(("event", event))
                if event.id in arming:
                    self.log.append(("armed", event.id))
                caused = [e for e in emitted if e.causation_id == event.id]
                self.log += [("emitted", e) for e in caused]
                emitted = [e for e in emitted if e not in caused]


def _with_id(envelope: Envelope, event_id: str) -> Envelope:
    return Envelope(envelope.event, event_id, envelope.source, envelope.time, envelope.correlation_id)


def decoded(records: list[tuple[object, ...]]) -> list[Envelope]:
    """Envelopes from the argument lists `shared.delivery.outbox.stage` executed with."""
    from shared.delivery.outbox import decode_headers

    return [
        decode(key, value, decode_headers(headers))
        for args in records
        for _, key, value, headers in zip(*args, strict=True)
    ]


def expected(timeline: Timeline, timer: SlaTimer) -> TimerState:
    """The oracle, from the log alone: a timer fires at the first pass whose stream time of
    the timer's partition is at or after its deadline unless, between its arming and that
    pass, its ticket was resolved, routed to another tier, escalated or returned with a fix,
    or (first response) answered by its tier.
    Its arming is the first delivery of its cause that armed (a redelivery can arm what the
    first delivery did not; the store keeps the first timer of a key)."""
    log = timeline.log
    armed = log.index(("armed", timer.armed_by))
    partition = timeline.partition(timer.ticket_id)
    fired = next(
        i
        for i, (kind, at) in enumerate(log)
        if i > armed and kind == "fire" and partition in at and at[partition] >= timer.due_at  # type: ignore[operator]
    )
    for kind, e in log[armed + 1 : fired]:
        if kind in ("fire", "armed") or e.ticket_id != timer.ticket_id:
            continue
        if kind == "event" and (
            e.type == "ticket.resolved"
            or (e.type == "ticket.routed" and e.event.tier is not timer.tier)
            or (e.type == "ticket.responded" and timer.kind == "first_response" and e.event.tier is timer.tier)
        ):
            return TimerState.CANCELLED
        if kind == "emitted" and (
            e.type == "ticket.escalated" or (e.type == "ticket.bounced" and e.event.reason == "returned_with_fix")
        ):
            return TimerState.CANCELLED
    return TimerState.FIRED


def check(timeline: Timeline, timers: list[SlaTimer]) -> None:
    """At most once, exactly once for every timer that came due while current, and never
    for a timer the stream answered before its deadline (read before or after the pass)."""
    breaches = [(e, at) for e, at in timeline.emitted if e.type == "ticket.sla_breached"]
    by_id = Counter(e.id for e, _ in breaches)
    assert all(n == 1 for n in by_id.values()), "a breach was emitted twice"
    by_timer = Counter((e.causation_id, e.event.kind) for e, _ in breaches)
    assert all(n == 1 for n in by_timer.values()), "a timer fired twice"
    assert all(e.event.deadline <= at for e, at in breaches), "a timer fired before its stream was read past it"
    for breach, _ in breaches:
        assert not any(_answers(breach, e) for e in timeline.applied[_arming(timeline, breach) + 1 :]), (
            "a breach of a timer the stream answered in time"
        )
    sla_escalations = Counter(
        e.causation_id
        for e, _ in timeline.emitted
        if e.type == "ticket.escalated" and e.event.reason is EscalationReason.SLA_BREACH
    )
    assert set(sla_escalations) <= set(by_id) and all(n == 1 for n in sla_escalations.values())
    state = {(t.armed_by, t.kind): t.state for t in timers}
    assert TimerState.PENDING not in state.values(), "a due timer was never settled"
    assert {k for k, s in state.items() if s is TimerState.FIRED} == set(by_timer), "fired timers and breaches differ"
    for timer in timers:
        assert timer.state is expected(timeline, timer), f"{timer.kind} armed by {timer.armed_by}"


def _arming(timeline: Timeline, breach: Envelope) -> int:
    return next(i for i, e in enumerate(timeline.applied) if e.id == breach.causation_id)


def _answers(breach: Envelope, event: Envelope) -> bool:
    """`event`, read after the arming, stamped before the deadline, cancels the breached timer."""
    b = breach.event
    return (
        event.ticket_id == b.ticket_id
        and event.time < b.deadline
        and (
            event.type == "ticket.resolved"
            or (event.type == "ticket.routed" and event.event.tier is not b.tier)
            or (event.type == "ticket.responded" and b.kind == "first_response" and event.event.tier is b.tier)
        )
    )
