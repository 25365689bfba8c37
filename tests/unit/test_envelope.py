"""The shared contract: every event model round-trips through the CloudEvents envelope,
and bad records are rejected with a reason that names the header or field."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared import envelope as ce
from shared.events import (
    EVENT_TYPES,
    BounceReason,
    Channel,
    EscalationReason,
    HandoffChecklist,
    Priority,
    RoutingReason,
    SlaKind,
    TicketBounced,
    TicketClaimRequested,
    TicketCreated,
    TicketEscalated,
    TicketEscalationRequested,
    TicketRated,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketReturnRequested,
    TicketRouted,
    TicketSlaBreached,
    Tier,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

SAMPLES = [
    TicketCreated(
        ticket_id="t-1",
        customer_id="c-1",
        channel=Channel.EMAIL,
        subject="Cannot log in",
        intent="login",
        priority=Priority.P2,
        customer_blocked=True,
        created_at=NOW,
    ),
    TicketRouted(ticket_id="t-1", tier=Tier.L3, queue="eng", reason=RoutingReason.JUMP, communication_owner=Tier.L1),
    TicketResponded(ticket_id="t-1", tier=Tier.L1, agent_id="a-1"),
    TicketEscalationRequested(
        ticket_id="t-1",
        from_tier=Tier.L1,
        to_tier=Tier.L2,
        agent_id="a-1",
        checklist=HandoffChecklist(
            impact="all users", steps_attempted=["reset"], attachments=["req-9"], problem_statement="SSO fails"
        ),
        hypothesis="expired IdP certificate",
    ),
    TicketEscalated(ticket_id="t-1", from_tier=Tier.L1, to_tier=Tier.L2, reason=EscalationReason.HANDOFF),
    TicketReturnRequested(
        ticket_id="t-1", from_tier=Tier.L2, to_tier=Tier.L1, agent_id="a-2", fix_summary="rotate cert"
    ),
    TicketBounced(
        ticket_id="t-1", from_tier=Tier.L2, to_tier=Tier.L1, reason=BounceReason.HANDOFF_INCOMPLETE, missing=["impact"]
    ),
    TicketSlaBreached(ticket_id="t-1", tier=Tier.L2, kind=SlaKind.TIME_IN_TIER, deadline=NOW),
    TicketResolved(ticket_id="t-1", tier=Tier.L1, agent_id="a-1", resolution_code="config_fix"),
    TicketReopened(ticket_id="t-1"),
    TicketRated(ticket_id="t-1", score=5),
    TicketClaimRequested(ticket_id="t-1", tier=Tier.L3, agent_id="kofi", batch_id="b-1"),
]


def test_every_catalogue_type_has_a_sample():
    assert {type(sample) for sample in SAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.TYPE)
def test_round_trip(event):
    original = ce.Envelope(
        event=event,
        id=ce.new_id(),
        source="test",
        time=NOW,
        correlation_id="corr-1",
        causation_id="cause-1",
        cycle=3,
    )
    record = ce.encode(original)
    assert record.key == b"t-1"
    headers = dict(record.headers)
    assert headers["ce_type"] == event.TYPE.encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_cycle"] == b"3"
    assert ce.decode(record.key, record.value, record.headers) == original


def test_causation_is_optional_and_ids_derive_deterministically():
    envelope = ce.Envelope(event=SAMPLES[0], id="e-1", source="s", time=NOW, correlation_id="e-1")
    record = ce.encode(envelope)
    assert "ce_causationid" not in dict(record.headers)
    assert ce.decode(record.key, record.value, record.headers).causation_id is None
    assert ce.derive_id("cmd-1", "created") == ce.derive_id("cmd-1", "created")
    assert ce.derive_id("cmd-1", "created") != ce.derive_id("cmd-2", "created")


def test_an_absent_cycle_is_unknown():
    """Records written before cycles existed have no ce_cycle: decoded as unknown (None),
    which the staleness rule takes as the ticket's current cycle."""
    record = ce.encode(ce.Envelope(event=SAMPLES[0], id="e-1", source="s", time=NOW, correlation_id="e-1"))
    assert "ce_cycle" not in dict(record.headers)
    assert ce.decode(record.key, record.value, record.headers).cycle is None
    assert ce.decode(*_record(ce_cycle=b"2147483647")).cycle == 2**31 - 1


@pytest.mark.parametrize(
    "value", [b"", b"0", b"-1", b"+1", b"01", b"1.5", b" 1", b"1 ", b"1e3", b"two", b"2147483648", "\u0661".encode()]
)
def test_a_malformed_cycle_makes_the_event_invalid(value):
    with pytest.raises(ce.EnvelopeError, match=r"^ce_cycle is not an integer from 1 to 2147483647$"):
        ce.decode(*_record(ce_cycle=value))


def _record(**changes):
    envelope = ce.Envelope(event=SAMPLES[0], id="e-1", source="s", time=NOW, correlation_id="e-1")
    record = ce.encode(envelope)
    headers = dict(record.headers)
    for name, value in changes.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return record.key, record.value, list(headers.items())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ce_id": None}, "missing header ce_id"),
        ({"ce_type": None}, "missing header ce_type"),
        ({"ce_type": b"ticket.exploded"}, r"unknown ce_type \(not in the event catalogue\)"),
        ({"ce_specversion": b"0.3"}, "ce_specversion is not 1.0"),
        ({"ce_id": b"x" * 201}, "ce_id longer than 200 characters"),
        ({"ce_time": b"yesterday"}, "ce_time is not an RFC 3339 timestamp"),
        ({"ce_time": b"2026-11-23T12:00:00"}, "ce_time has no timezone offset"),
        ({"ce_source": b"\xff"}, "header ce_source is not UTF-8"),
    ],
)
def test_bad_headers_are_named(changes, reason):
    with pytest.raises(ce.EnvelopeError, match=reason):
        ce.decode(*_record(**changes))


def test_key_must_match_body():
    _, value, headers = _record()
    with pytest.raises(ce.EnvelopeError, match="record key does not match"):
        ce.decode(b"t-2", value, headers)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"not json", ["body"]),
        (b'{"ticket_id": "t-1"}', ["customer_id", "channel", "subject", "intent", "priority"]),
        (
            b'{"ticket_id": "t-1", "customer_id": "c", "channel": "fax", "subject": "s", "intent": "x",'
            b' "priority": "P9", "customer_blocked": "yes", "created_at": "2026-11-23T12:00:00"}',
            ["channel", "priority", "customer_blocked", "created_at"],
        ),
        (
            b'{"ticket_id": "t 1", "customer_id": "c", "channel": "web", "subject": "s", "intent": "x",'
            b' "priority": "P1", "customer_blocked": false, "created_at": "2026-11-23T12:00:00Z", "extra": 1}',
            ["ticket_id", "?: unexpected field"],
        ),  # the unexpected key itself is client text: not echoed
    ],
)
def test_bad_bodies_name_every_field(body, fields):
    key, _, headers = _record()
    with pytest.raises(ce.EnvelopeError) as caught:
        ce.decode(key, body, headers)
    for field in fields:
        assert field in str(caught.value)


def test_header_values_are_not_echoed_in_errors():
    for changes in (
        {"ce_type": b"secret.type"},
        {"ce_specversion": b"secret"},
        {"ce_time": b"secret"},
        {"ce_cycle": b"secret"},
    ):
        with pytest.raises(ce.EnvelopeError) as caught:
            ce.decode(*_record(**changes))
        assert "secret" not in str(caught.value)


def test_body_text_is_not_echoed_in_errors():
    key, _, headers = _record()
    secret = "customer password hunter2"
    body = (
        f'{{"ticket_id": "t-1", "customer_id": "c", "channel": "web", "subject": "{secret}", "intent": "BAD INTENT",'
        ' "priority": "P1", "customer_blocked": false, "created_at": "2026-11-23T12:00:00Z"}'
    )
    with pytest.raises(ce.EnvelopeError) as caught:
        ce.decode(key, body.encode(), headers)
    assert "intent" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_models_are_strict():
    with pytest.raises(ValidationError, match="score"):
        TicketRated(ticket_id="t-1", score=6)
    with pytest.raises(ValidationError, match="score"):
        TicketRated(ticket_id="t-1", score="5")
    with pytest.raises(ValidationError, match="customer_blocked"):
        TicketCreated(
            ticket_id="t-1",
            customer_id="c",
            channel=Channel.WEB,
            subject="s",
            intent="x",
            priority=Priority.P1,
            customer_blocked=1,
            created_at=NOW,
        )


def test_name_based_ids_are_standard_uuid5():
    import uuid

    namespace = uuid.UUID("8f0b7a8e-3c52-4d7e-9a53-5e0c0f6d1a11")
    for name in ("", "a", "cmd-1/ticket.created", "ünïcode/\u2603" * 20):
        assert ce.name_based_id(namespace, name) == str(uuid.uuid5(namespace, name))
