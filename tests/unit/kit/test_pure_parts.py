"""The delivery kit's pure parts: header encoding, lock keys, failure classes, the
staleness rule, safe validation messages."""

import re
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, NotLeaderForPartitionError
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from shared.delivery import outbox
from shared.delivery.events import EventConsumer
from shared.delivery.failures import Kind, Outage, Systemic, classify, describe, is_transient
from shared.delivery.locks import LADDER, client_key, internal_key, lock_statement
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.outbox import decode_headers, encode_headers
from shared.delivery.records import Rejection, SourceRecord, dead_letter
from shared.events import (
    RoutingReason,
    TicketCreated,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
    TicketRouted,
    Tier,
)
from shared.lifecycle import LIFECYCLE_TYPES, Lifecycle, Stale, Status, advance, judge

CREATED_BODY = {
    "ticket_id": "t",
    "customer_id": "c",
    "channel": "email",
    "subject": "s",
    "intent": "login",
    "priority": "P3",
    "customer_blocked": False,
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
}

header_names = st.text(st.characters(codec="utf-8"), max_size=40)  # NUL included
header_values = st.none() | st.binary(max_size=300)


@given(st.lists(st.tuples(header_names, header_values), max_size=20))
def test_any_headers_survive_the_outbox(headers):
    assert decode_headers(encode_headers(headers)) == headers


@given(st.lists(st.text(max_size=80), max_size=5))
def test_lock_statements_hold_only_integers(values):
    statement = lock_statement({"intake:ticket": [*values, "'); DROP TABLE x; --"], "intake:command": values})
    assert re.fullmatch(
        r"SELECT pg_advisory_xact_lock\(k\) FROM unnest\('\{-?\d+(,-?\d+)*\}'::bigint\[\]\) AS k", statement
    )


def test_client_ids_cannot_reach_internal_locks():
    # internal locks use the two-integer form, client data the one-bigint form: apart by construction
    assert internal_key("relay:intake")[0] == LADDER
    assert client_key("intake:ticket", "relay:intake") != client_key("intake:command", "relay:intake")
    assert client_key("intake:ticket", "t-1") == client_key("intake:ticket", "t-1")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.DeadlockDetectedError(), True),
        (asyncpg.exceptions.SerializationError(), True),
        (asyncpg.exceptions.AdminShutdownError(), True),
        (asyncpg.exceptions.TooManyConnectionsError(), True),
        (asyncpg.exceptions.UniqueViolationError(), False),
        (asyncpg.exceptions.CheckViolationError(), False),
        (asyncpg.exceptions.CharacterNotInRepertoireError(), False),
        (asyncpg.exceptions.UndefinedTableError(), False),
        (KafkaConnectionError(), True),
        (NotLeaderForPartitionError(), True),
        (MessageSizeTooLargeError(), False),
        (ValueError("bug"), False),
    ],
)
def test_what_heals_by_waiting(error, transient):
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (asyncpg.exceptions.InsufficientPrivilegeError("permission denied"), Kind.SYSTEMIC),
        (asyncpg.exceptions.UndefinedTableError("no table"), Kind.SYSTEMIC),
        (asyncpg.exceptions.UndefinedColumnError("no column"), Kind.SYSTEMIC),
        (asyncpg.exceptions.InvalidSchemaNameError("no schema"), Kind.SYSTEMIC),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("read only"), Kind.SYSTEMIC),
        (asyncpg.exceptions.InvalidPasswordError("auth"), Kind.SYSTEMIC),
        (Systemic("KeyError"), Kind.SYSTEMIC),
        (asyncpg.exceptions.AdminShutdownError("restart"), Kind.TRANSIENT),
        (ConnectionRefusedError(), Kind.TRANSIENT),
        (asyncpg.InternalClientError("connection lost mid-protocol"), Kind.TRANSIENT),
        (asyncpg.exceptions.CheckViolationError("check"), Kind.POISON),
        (asyncpg.exceptions.StringDataRightTruncationError("too long"), Kind.POISON),
        (KeyError("x"), Kind.POISON),
    ],
)
def test_three_kinds_of_failure(error, kind):
    assert classify(error) is kind


class FakeGauge:
    def __init__(self):
        self.values = {}

    def labels(self, part):
        gauge = self

        class Child:
            def set(self, value):
                gauge.values[part] = value

        return Child()


def test_an_outage_backs_off_to_a_cap_and_logs_once_per_step(caplog):
    now = [0.0]
    gauge = FakeGauge()
    outage = Outage("consumer t", gauge, first_pause_s=1, max_pause_s=8, clock=lambda: now[0])
    error = asyncpg.exceptions.InsufficientPrivilegeError("permission denied for table secret_name")
    pauses = []
    for _ in range(6):
        pauses.append(outage.failed(error))
        assert outage.failed(error) == pauses[-1]  # a second member within the step: same step
        now[0] += pauses[-1]
    assert pauses == [1, 2, 4, 8, 8, 8]
    assert len([r for r in caplog.records if "cannot make progress" in r.getMessage()]) == 6
    assert "secret_name" not in caplog.text
    assert outage.ready() == "systemic: InsufficientPrivilegeError (42501)"
    assert gauge.values == {"consumer t": 1}
    outage.healed()
    assert (outage.ready(), gauge.values["consumer t"]) == (True, 0)
    assert outage.failed(error) == 1  # a new outage starts from the first step


def test_a_transient_outage_is_ready_until_it_lasts():
    now = [0.0]
    outage = Outage("loop kpis", FakeGauge(), unready_after_s=30, clock=lambda: now[0])
    outage.failed(ConnectionRefusedError())
    assert outage.ready() is True
    now[0] = 31
    outage.failed(ConnectionRefusedError())
    assert outage.ready() == "transient: ConnectionRefusedError"


def test_failures_are_described_without_their_text():
    error = asyncpg.exceptions.UniqueViolationError('duplicate key value violates "x": Key (id)=(secret) exists')
    assert describe(error) == "UniqueViolationError (23505)"
    assert "secret" not in describe(ValueError("secret"))


def test_dead_letters_keep_everything_but_credentials():
    source = SourceRecord(
        "t",
        2,
        9,
        1,
        None,
        None,
        [("authorization", b"Bearer x"), ("Authorization", b"y"), ("n\x00", None), ("b", b"\xff")],
    )
    record = dead_letter(
        source, Rejection("not_json", "not JSON"), topic="dlq", service="s", at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert (record.topic, record.key, record.value) == ("dlq", None, None)
    kept = [h for h in record.headers if not h[0].startswith("dlq_")]
    assert kept == [("n\x00", None), ("b", b"\xff")]
    assert dict(record.headers)["dlq_code"] == b"not_json"


EVERY_TYPE = [
    "ticket.created",
    "ticket.routed",
    "ticket.responded",
    "ticket.escalation_requested",
    "ticket.escalated",
    "ticket.bounced",
    "ticket.return_requested",
    "ticket.sla_breached",
    "ticket.resolved",
    "ticket.reopened",
    "ticket.rated",
]


@given(st.lists(st.sampled_from(EVERY_TYPE), max_size=30))
def test_the_staleness_rule_is_a_state_machine(types):
    """Whatever arrives: created once first; a resolved ticket takes only a reopen or one
    rating; an open one never a reopen or a rating; nothing but created for an unknown one."""
    state = None
    for event_type in types:
        verdict = advance(state, event_type)
        if isinstance(verdict, Stale):
            if state is None:
                assert event_type != "ticket.created"
            elif state.status is Status.RESOLVED:
                assert event_type not in ("ticket.reopened",) and not (event_type == "ticket.rated" and not state.rated)
            else:
                assert event_type in ("ticket.created", "ticket.reopened", "ticket.rated")
            continue
        if event_type not in LIFECYCLE_TYPES:
            assert verdict == state and state.status is Status.OPEN
        state = verdict
    assert state is None or isinstance(state, Lifecycle)


def test_the_staleness_rule_by_example():
    opened = advance(None, "ticket.created")
    assert opened == Lifecycle(Status.OPEN)
    resolved = advance(opened, "ticket.resolved")
    assert advance(resolved, "ticket.sla_breached") is Stale.TICKET_RESOLVED
    assert advance(resolved, "ticket.escalated") is Stale.TICKET_RESOLVED
    rated = advance(resolved, "ticket.rated")
    assert advance(rated, "ticket.rated") is Stale.ALREADY_RATED
    assert advance(rated, "ticket.reopened") == Lifecycle(Status.OPEN, cycle=2)  # a reopen starts the next cycle
    assert advance(opened, "ticket.created") is Stale.TICKET_EXISTS
    assert advance(None, "ticket.routed") is Stale.UNKNOWN_TICKET


CYCLES = st.one_of(st.none(), st.integers(min_value=1, max_value=4))


@given(st.lists(st.tuples(st.sampled_from(EVERY_TYPE), CYCLES), max_size=30))
def test_an_earlier_cycle_is_stale_and_the_cycle_never_goes_back(events):
    """Cycles come before status: an event of a cycle below the ticket's is stale whatever
    its type; otherwise the status rule decides exactly as without a cycle. The cycle is the
    highest of the events that fit, an unknown one the current (a reopen: the next)."""
    state = None
    for event_type, cycle in events:
        verdict = advance(state, event_type, cycle)
        earlier = state is not None and event_type != "ticket.created" and cycle is not None and cycle < state.cycle
        assert (verdict is Stale.EARLIER_CYCLE) == earlier
        if earlier:
            continue
        unknown = advance(state, event_type)
        if isinstance(verdict, Stale):
            assert verdict is unknown
            continue
        assert isinstance(unknown, Lifecycle) and (verdict.status, verdict.rated) == (unknown.status, unknown.rated)
        if cycle is not None:
            assert verdict.cycle == cycle
        elif state is None:
            assert verdict.cycle == 1
        else:
            assert verdict.cycle == state.cycle + (event_type == "ticket.reopened")
        state = verdict


def test_a_late_event_of_the_previous_cycle_is_stale():
    """Issue 14: a breach and the escalation it caused in cycle 1 land after the reopen."""
    state = advance(None, "ticket.created", 1)
    for event_type in ("ticket.routed", "ticket.escalated", "ticket.resolved"):
        state = advance(state, event_type, 1)
    reopened = advance(state, "ticket.reopened", 2)
    assert reopened == Lifecycle(Status.OPEN, cycle=2)
    assert advance(reopened, "ticket.sla_breached", 1) is Stale.EARLIER_CYCLE
    assert advance(reopened, "ticket.escalated", 1) is Stale.EARLIER_CYCLE
    assert advance(reopened, "ticket.routed", 2) == reopened
    assert advance(reopened, "ticket.routed") == reopened  # no ce_cycle: the current cycle
    assert advance(state, "ticket.reopened") == Lifecycle(Status.OPEN, cycle=2)  # no ce_cycle: the next


def _routed(tier: Tier, speaker: Tier | None = None) -> TicketRouted:
    return TicketRouted(ticket_id="t", tier=tier, queue="q", reason=RoutingReason.RULE, communication_owner=speaker)


def _response(tier: Tier) -> TicketResponded:
    return TicketResponded(ticket_id="t", tier=tier, agent_id="bot")


def _return(tier: Tier) -> TicketReturnRequested:
    return TicketReturnRequested(ticket_id="t", from_tier=tier, to_tier=Tier.L1, agent_id="a", fix_summary="fixed")


def test_a_tier_claim_fits_only_the_owner_or_the_communication_owner():
    """Issue 16: a response claiming L2 on a ticket L1 owns does not fit; nor before the first
    routing or after a resolution (nobody owns it); a mismatch leaves the lifecycle as it was."""
    created = judge(None, TicketCreated.model_validate(CREATED_BODY, strict=False))
    assert isinstance(created, Lifecycle)
    assert judge(created, _response(Tier.L1)) is None  # not routed yet
    at_l1 = judge(created, _routed(Tier.L1))
    assert isinstance(at_l1, Lifecycle) and at_l1.owner is Tier.L1
    assert judge(at_l1, _response(Tier.L2)) is None
    assert judge(at_l1, _response(Tier.L1)) == at_l1
    assert judge(at_l1, _return(Tier.L2)) is None
    jumped = judge(at_l1, _routed(Tier.L3, speaker=Tier.L1))
    assert isinstance(jumped, Lifecycle)
    assert judge(jumped, _response(Tier.L1)) == jumped  # the communication owner speaks
    assert judge(jumped, _response(Tier.L3)) == jumped
    assert judge(jumped, _response(Tier.L2)) is None
    assert judge(jumped, _return(Tier.L1)) is None  # only the owner hands it back
    assert judge(jumped, _return(Tier.L3)) == jumped
    # a resolution is not judged (the owner is credited), and leaves nobody owning the ticket
    resolved = judge(jumped, TicketResolved(ticket_id="t", tier=Tier.L2, agent_id="a", resolution_code="x"))
    assert isinstance(resolved, Lifecycle) and (resolved.status, resolved.owner) == (Status.RESOLVED, None)
    reopened = judge(resolved, TicketReopened(ticket_id="t"))
    assert isinstance(reopened, Lifecycle) and judge(reopened, _response(Tier.L3)) is None
    # a lifecycle stored before owners were tracked judges no claim until its next routing
    legacy = Lifecycle(owners_known=False)
    assert judge(legacy, _response(Tier.L4)) == legacy
    assert judge(judge(legacy, _routed(Tier.L1)), _response(Tier.L4)) is None  # type: ignore[arg-type]


def test_the_outbox_remembers_few_and_short_header_names():
    for i in range(1000):  # client-chosen names: many, some huge
        headers = [(f"x-{i}", b"v"), ("n" * 100_000 + str(i), None)]
        assert outbox.decode_headers(outbox.encode_headers(headers)) == headers
    assert len(outbox._HEADS) <= 256 and len(outbox._NAMES) <= 256
    assert max(map(len, outbox._HEADS)) <= 64 and max(map(len, outbox._NAMES)) <= 64


class _ReadsCreated:
    types = frozenset({"ticket.created"})

    async def apply(self, conn, batch):  # pragma: no cover - `read` is pure
        raise AssertionError


def _record(headers, value=b"{}") -> SourceRecord:
    return SourceRecord("support.ticket-events", 0, 1, 1, b"t", value, headers)


def test_a_consumer_skips_other_services_types_unread_however_the_header_is_spelled():
    consumer = EventConsumer(
        service="s",
        schema="s",
        handler=_ReadsCreated(),
        metrics=DeliveryMetrics(CollectorRegistry()),
        pool=lambda: None,  # type: ignore[arg-type,return-value]
        dead_letter_topic="dlq",
    )
    garbage = b"\xff not json"  # a skipped record's body is never parsed
    events, poison = consumer.read(
        [
            _record([("ce_type", b"ticket.escalated")], garbage),  # router's and escalation's
            _record([("CE_Type", b"ticket.escalated")], garbage),  # the same, any letter case
            _record([("ce_type", b"ticket.escalated"), ("ce_source", b"\xff")], garbage),  # a bad attribute, unread
            _record([("ce_type", b"ticket.resolved")], garbage),  # tracked: the lifecycle rule reads it
            _record([("ce_type", b"ticket.created"), ("ce_source", b"\xff")]),
            _record([("ce_type", b"ticket.teleported")]),
            _record([("ce_type", None)]),
        ]
    )
    assert events == []
    assert [rejection.detail for _, rejection in poison] == [
        "missing header ce_specversion",  # ticket.resolved: decoded, then refused
        "header ce_source is not UTF-8",
        "missing header ce_specversion",  # an unknown type is everybody's poison
        "missing header ce_specversion",
    ]
