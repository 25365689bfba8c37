"""Property tests over any sequence of creates, moves, resolves, reopens and clock moves, in
batches of any size, through the handler and the periodic pass (dispatch invariants 1-5)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.router.core.assignment import open_desk
from shared.charter import DEFAULT_PATH, Charter, load_charter, parse_charter
from shared.events import BounceReason, EscalationReason, Priority, RoutingReason, Tier
from tests.unit.router.builders import TINY, TUESDAY, Events
from tests.unit.router.harness import Harness


def _tight() -> Charter:
    """The shipped charter (shifts, rotation, office hours) with room for one ticket per agent."""
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    for spec in data["tiers"].values():
        spec["roster"]["max_open_per_agent"] = 1
    return parse_charter(yaml.safe_dump(data))


CHARTERS = {"default": load_charter(), "tight": _tight(), "tiny": load_charter(TINY)}
INTENTS = ["login", "billing", "data_loss", "performance", "crash", "outage", "refund_fraud", "security_incident"]
TICKETS = [f"t{i}" for i in range(8)]  # few, so that one ticket sees many events

created = st.tuples(
    st.just("created"),
    st.sampled_from(TICKETS),
    st.sampled_from(INTENTS),
    st.sampled_from(list(Priority)),
    st.booleans(),
)
step = st.one_of(
    created,
    created,  # twice as likely: queues fill up
    st.tuples(
        st.just("escalated"),
        st.sampled_from(TICKETS),
        st.sampled_from(list(Tier)),
        st.sampled_from(list(EscalationReason)),
    ),
    st.tuples(
        st.just("bounced"), st.sampled_from(TICKETS), st.sampled_from(list(Tier)), st.sampled_from(list(BounceReason))
    ),
    st.tuples(st.just("resolved"), st.sampled_from(TICKETS)),
    st.tuples(st.just("reopened"), st.sampled_from(TICKETS)),
    st.tuples(st.just("clock"), st.integers(1, 16 * 60)),  # minutes: shifts change, office hours open
    st.tuples(st.just("commit")),  # a batch boundary
)


def envelope(ev: Events, harness: Harness, op: tuple):
    kind, ticket = op[0], op[1]
    known = harness.db.tickets.get(ticket)
    here = known.tier if known else Tier.L1
    if kind == "created":
        return ev.created(ticket, op[2], op[3], op[4])
    if kind == "escalated":
        return ev.escalated(ticket, here, op[2], op[3])
    if kind == "bounced":
        return ev.bounced(ticket, here, op[2], op[3])
    return ev.resolved(ticket) if kind == "resolved" else ev.reopened(ticket)


def check(harness: Harness) -> None:
    charter = harness.charter
    held: Counter = Counter()
    for ticket in harness.db.tickets.values():
        if ticket.assignee is not None:  # at most one assignee, an agent of the owning tier, open
            assert not ticket.resolved and not ticket.shadow
            assert ticket.assignee in charter.tiers[ticket.tier].roster.agents
            held[(ticket.tier, ticket.assignee)] += 1
    for (tier, agent), seat in harness.db.seats.items():
        assert seat.open == held[(tier, agent)]  # the counters are exactly the open assignments
        assert seat.open <= charter.tiers[tier].roster.max_open_per_agent  # never beyond the cap
    last = {}
    for routed in harness.emitted:
        last[routed.ticket_id] = routed.event
    for ticket_id, ticket in harness.db.tickets.items():  # the routed stream says who owns what
        event = last[ticket_id]
        assert (event.tier, event.queue, event.communication_owner) == (
            ticket.tier,
            ticket.queue,
            ticket.communication_owner,
        )
        if not ticket.resolved:
            assert event.assignee == ticket.assignee


def work_conserving(harness: Harness) -> None:
    """Nobody with room is idle while a ticket they may take waits (after a pass at this time,
    and after every batch since)."""
    for tier in harness.charter.ladder:
        seats = {agent: seat for (t, agent), seat in harness.db.seats.items() if t == tier}
        desk = open_desk(harness.charter, tier, harness.now, seats)
        waiting = [t for t in harness.db.tickets.values() if t.tier == tier and t.waiting and desk.takes(t.urgent)]
        assert not (waiting and desk.free()), (tier, waiting, desk)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CHARTERS)), st.integers(0, 7 * 24), st.lists(step, min_size=20, max_size=80))
def test_any_sequence_keeps_ownership_and_capacity_consistent(charter_name, hours, ops):
    harness = Harness(CHARTERS[charter_name], TUESDAY + timedelta(hours=hours))
    ev = Events(harness.now)
    batch = []
    for op in [*ops, ("commit",)]:
        if op[0] == "clock":
            harness.apply(*batch)
            batch = []
            harness.now += timedelta(minutes=op[1])
            ev.now = harness.now
            harness.tick()
            work_conserving(harness)
        elif op[0] == "commit":
            harness.apply(*batch)
            batch = []
            work_conserving(harness)  # the clock did not move since the last pass: batches keep it so
        else:
            batch.append(envelope(ev, harness, op))
        check(harness)
    ids = [routed.id for routed in harness.emitted]
    assert len(ids) == len(set(ids))  # every emitted event has its own id
    first = Counter(r.ticket_id for r in harness.emitted if r.event.reason in (RoutingReason.RULE, RoutingReason.JUMP))
    assert set(first.values()) <= {1} and set(first) == set(harness.db.tickets)  # one first routing each
