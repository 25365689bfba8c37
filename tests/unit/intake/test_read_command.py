"""Topic records become commands or poison with a reason (pure translation, no broker)."""

from datetime import UTC, datetime

import orjson
import pytest

from services.intake.core.auth import ApiKey, KeyRing, KeyRingConfig, hash_key
from services.intake.core.commands import Action
from services.intake.handlers.commands import read_command
from services.intake.service import FromTopic, Poison
from shared import signing
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


SIGNERS = {b"Bearer k1": ("helpdesk", "k1"), b"Bearer k2": ("chatbot", "k2"), b"Bearer wrong": ("helpdesk", "wrong")}


def record(value, key="helpdesk-key", offset=7, auth=b"Bearer k1", timestamp=1_700_000_000_000, signed_at=None):
    """A record signed as `auth` names (see SIGNERS); None: not signed at all."""
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    headers = []
    if auth is not None:
        client, secret = SIGNERS[auth]
        headers = signing.sign(
            client, secret, key.encode(), body, now=NOW.timestamp() if signed_at is None else signed_at
        )
    return SourceRecord("support.ticket-commands", 2, offset, timestamp, key.encode(), body, headers)


def read(rec, max_bytes=1024):
    return read_command(rec, RING, max_bytes=max_bytes, now=NOW)


def test_valid_create():
    entry = read(record(CREATE))
    assert isinstance(entry, FromTopic)
    assert entry.submission.client == "helpdesk"
    assert entry.submission.received_at == NOW
    # Without a command_id the signature identifies the command: a redelivery, or a copy
    # published again inside the replay window, repeats it; a record signed anew does not.
    assert read(record(CREATE)).submission.command_id == entry.submission.command_id
    assert read(record(CREATE, offset=8)).submission.command_id == entry.submission.command_id
    later = record(CREATE, signed_at=NOW.timestamp() - 1)
    assert read(later).submission.command_id != entry.submission.command_id


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
        (CREATE, None, "unauthenticated", "unauthenticated: missing signature"),
        (b"garbage from a stranger", None, "unauthenticated", "unauthenticated"),  # authentication comes before parsing
        (CREATE, b"Bearer wrong", "unauthenticated", "unauthenticated: invalid signature"),
        (b"x" * 2000, b"Bearer k1", "too_large", "too large: 2142 bytes > 1024"),  # key and headers count
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
        "support.ticket-commands",
        0,
        1,
        1,
        b"k" * 2_000_000,
        orjson.dumps(CREATE),
        signing.sign("helpdesk", "k1", b"k" * 2_000_000, orjson.dumps(CREATE), now=NOW.timestamp()),
    )
    assert read(big, max_bytes=65536).rejection.code == "too_large"
    nulls = SourceRecord(
        "support.ticket-commands",
        0,
        2,
        1,
        None,
        orjson.dumps(CREATE),
        [(signing.CLIENT, None), (signing.SIGNATURE, None), ("x\x00y", None)],
    )
    assert read(nulls).rejection.code == "unauthenticated"


def test_a_redelivered_record_is_recognised_by_its_bytes():
    first = read(record(CREATE))
    assert first.submission.fingerprint == read(record(CREATE)).submission.fingerprint
    with_id = read(record({**CREATE, "command_id": "x"}))
    assert (
        with_id.submission.fingerprint == read(record({**CREATE, "command_id": "x"}, offset=99)).submission.fingerprint
    )


def signed_create(**changes):
    body = orjson.dumps(CREATE)
    headers = signing.sign("helpdesk", "k1", b"k", body, now=NOW.timestamp())
    fields = {"value": body, "key": b"k", "headers": headers, **changes}
    return SourceRecord("support.ticket-commands", 0, 1, 1, fields["key"], fields["value"], fields["headers"])


def header(record, name, value):
    return [(n, value if n == name else v) for n, v in record.headers]


@pytest.mark.parametrize(
    ("case", "changes", "reason"),
    [
        ("no signature", {"headers": []}, "missing signature"),
        ("old bearer header", {"headers": [("authorization", b"Bearer k1")]}, "missing signature"),
        ("body changed", {"value": orjson.dumps({**CREATE, "priority": "P1"})}, "invalid signature"),
        ("key changed", {"key": b"other"}, "invalid signature"),
        ("another client claimed", {"headers": "client=chatbot"}, "invalid signature"),
        ("unknown client", {"headers": "client=nobody"}, "invalid signature"),
        ("time changed", {"headers": "timestamp=+1"}, "invalid signature"),
        ("signature garbled", {"headers": "signature=v1=00"}, "invalid signature"),
        ("timestamp not a number", {"headers": "timestamp=soon"}, "not whole seconds"),
    ],
)
def test_a_record_not_signed_by_its_client_is_unauthenticated(case, changes, reason):
    base = signed_create()
    if isinstance(changes.get("headers"), str):
        which, _, value = changes.pop("headers").partition("=")
        name = {"client": signing.CLIENT, "timestamp": signing.TIMESTAMP, "signature": signing.SIGNATURE}[which]
        if value == "+1":
            value = str(int(NOW.timestamp()) + 1)
        changes["headers"] = header(base, name, value.encode())
    entry = read(signed_create(**changes))
    assert isinstance(entry, Poison), case
    assert entry.rejection.code == "unauthenticated"
    assert reason in entry.rejection.detail


def test_a_replayed_record_outside_the_window_is_unauthenticated():
    """A copy of a record signed ten minutes ago (e.g. read back from the topic) is refused;
    the window is symmetric, so a clock far ahead is refused too."""
    for skew in (-600, 600):
        entry = read(record(CREATE, signed_at=NOW.timestamp() + skew))
        assert isinstance(entry, Poison) and entry.rejection.code == "unauthenticated"
        assert "replay window" in entry.rejection.detail
    assert isinstance(read(record(CREATE, signed_at=NOW.timestamp() - 299)), FromTopic)


def test_both_keys_of_a_rotation_sign_and_an_expired_one_does_not():
    ring = KeyRing(
        KeyRingConfig(
            keys=[
                ApiKey(name="helpdesk", sha256=hash_key("old"), actions=frozenset(Action), expires_at=NOW),
                ApiKey(name="helpdesk", sha256=hash_key("new"), actions=frozenset(Action)),
            ]
        )
    )
    body = orjson.dumps(CREATE)
    for secret, signed_at, ok in (("old", NOW.timestamp(), False), ("new", NOW.timestamp(), True)):
        headers = signing.sign("helpdesk", secret, b"k", body, now=signed_at)
        entry = read_command(
            SourceRecord("support.ticket-commands", 0, 1, 1, b"k", body, headers), ring, max_bytes=4096, now=NOW
        )
        assert isinstance(entry, FromTopic) is ok, secret
    early = datetime(2026, 11, 22, tzinfo=UTC)
    headers = signing.sign("helpdesk", "old", b"k", body, now=early.timestamp())
    entry = read_command(
        SourceRecord("support.ticket-commands", 0, 1, 1, b"k", body, headers), ring, max_bytes=4096, now=early
    )
    assert isinstance(entry, FromTopic)  # before its expiry the old key still works


def test_a_key_with_a_newline_cannot_be_signed_ambiguously():
    body = orjson.dumps(CREATE)
    headers = signing.sign("helpdesk", "k1", b"a\nb", body, now=NOW.timestamp())
    entry = read(SourceRecord("support.ticket-commands", 0, 1, 1, b"a\nb", body, headers))
    assert isinstance(entry, Poison) and entry.rejection.code == "unauthenticated"
