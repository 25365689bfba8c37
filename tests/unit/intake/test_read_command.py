"""Topic records become commands or poison with a reason (pure translation, no broker)."""

from datetime import UTC, datetime

import orjson
import pytest

from services.intake.core.auth import ApiKey, KeyRing, KeyRingConfig, hash_key
from services.intake.core.commands import Action
from services.intake.handlers.commands import read_command
from services.intake.service import FromTopic, Poison
from shared.delivery.records import SourceRecord

NOW = datetime(2026, 11, 23, tzinfo=UTC)
RING = KeyRing(
    KeyRingConfig(
        keys=[
            ApiKey(name="helpdesk", sha256=hash_key("k1"), actions=frozenset(Action)),
            ApiKey(name="chatbot", sha256=hash_key("k2"), actions=frozenset({Action.CREATE})),
        ]
    )
)
CREATE = {"type": "create_ticket", "customer_id": "c", "channel": "email", "subject": "s", "intent": "billing"}


def record(value, key="helpdesk-key", offset=7, auth=b"Bearer k1", timestamp=1_700_000_000_000):
    headers = [("authorization", auth)] if auth is not None else []
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    return SourceRecord("support.ticket-commands", 2, offset, timestamp, key.encode(), body, headers)


def read(rec, max_bytes=1024):
    return read_command(rec, RING, max_bytes=max_bytes, now=NOW)


def test_valid_create():
    entry = read(record(CREATE))
    assert isinstance(entry, FromTopic)
    assert entry.submission.client == "helpdesk"
    assert entry.submission.received_at == NOW
    # Without a command_id the record's position identifies the command: a redelivery repeats it.
    assert read(record(CREATE)).submission.command_id == entry.submission.command_id
    assert read(record(CREATE, offset=8)).submission.command_id != entry.submission.command_id
    # A recreated topic reuses positions; its records have other timestamps, so other ids.
    assert read(record(CREATE, timestamp=1)).submission.command_id != entry.submission.command_id


def test_command_id_scopes_like_an_idempotency_key():
    first = read(record({**CREATE, "command_id": "abc"}, offset=1))
    second = read(record({**CREATE, "command_id": "abc"}, offset=99))
    assert first.submission.command_id == second.submission.command_id
    assert first.submission.ticket_id == second.submission.ticket_id


@pytest.mark.parametrize(
    ("value", "auth", "code", "reason"),
    [
        (b"\x00\xffnot json", b"Bearer k1", "not_json", "not JSON"),
        ([1, 2], b"Bearer k1", "not_a_command", "not a command"),
        ({"no": "type"}, b"Bearer k1", "not_a_command", "not a command"),
        (
            {"type": "launch_rocket"},
            b"Bearer k1",
            "unknown_command",
            "unknown command type; expected one of create_ticket",
        ),
        ({**CREATE, "priority": "urgent"}, b"Bearer k1", "invalid_command", "create_ticket.priority"),
        (
            {"type": "resolve_ticket", "ticket_id": "t-1", "tier": "L1", "agent_id": "a", "resolution_code": "x"},
            b"Bearer k2",
            "forbidden",
            "forbidden: API key 'chatbot' may not resolve",
        ),
        (CREATE, None, "unauthenticated", "unauthenticated: missing bearer API key"),
        (b"garbage from a stranger", None, "unauthenticated", "unauthenticated"),  # authentication comes before parsing
        (CREATE, b"Bearer wrong", "unauthenticated", "unauthenticated: invalid API key"),
        (b"x" * 2000, b"Bearer k1", "too_large", "too large: 2034 bytes > 1024"),  # key and headers count
    ],
)
def test_poison_has_a_reason(value, auth, code, reason):
    entry = read(record(value, auth=auth))
    assert isinstance(entry, Poison)
    assert entry.rejection.code == code
    assert reason in entry.rejection.detail
    assert "k1" not in entry.rejection.detail and "k2" not in entry.rejection.detail


@pytest.mark.parametrize(
    "value",
    [
        {"type": "secret-customer-text"},  # an unknown type is not echoed
        {**CREATE, "secret-customer-text": "x"},  # nor the name of an unexpected field
        {**CREATE, "checklist": {"secret-customer-text": 1}},
        {
            "type": "request_escalation",
            "ticket_id": "t",
            "from_tier": "L1",
            "to_tier": "L2",
            "agent_id": "a",
            "checklist": {"impact": "x", "secret-customer-text": 1},
        },
    ],
)
def test_reasons_never_echo_client_text(value):
    entry = read(record(value))
    assert isinstance(entry, Poison)
    assert "secret" not in entry.rejection.detail


def test_a_huge_key_or_null_headers_are_poison_not_a_crash():
    big = SourceRecord(
        "support.ticket-commands", 0, 1, 1, b"k" * 2_000_000, orjson.dumps(CREATE), [("authorization", b"Bearer k1")]
    )
    assert read(big, max_bytes=65536).rejection.code == "too_large"
    nulls = SourceRecord(
        "support.ticket-commands", 0, 2, 1, None, orjson.dumps(CREATE), [("authorization", None), ("x\x00y", None)]
    )
    assert read(nulls).rejection.code == "unauthenticated"


def test_a_redelivered_record_is_recognised_by_its_bytes():
    first = read(record(CREATE))
    assert first.submission.fingerprint == read(record(CREATE)).submission.fingerprint
    with_id = read(record({**CREATE, "command_id": "x"}))
    assert (
        with_id.submission.fingerprint == read(record({**CREATE, "command_id": "x"}, offset=99)).submission.fingerprint
    )
