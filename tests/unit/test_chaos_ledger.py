"""The chaos ledger's own checks (tests/chaos/ledger.py) see a lost, a doubled and an
unexpected dead letter: a green chaos run means something."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from services.intake.core.tickets import command_id
from shared.envelope import derive_id
from shared.topics import Topics
from simulator.driver import BAD_COMMANDS
from tests.chaos.ledger import API_KEY_NAME, Ledger, commands_and_events, dead_letters
from tests.chaos.traffic import Sent


def event(event_id: str, cause: str, kind: str = "ticket.responded", ticket: str = "t1") -> SimpleNamespace:
    headers = {"ce_id": event_id, "ce_type": kind, "ce_subject": ticket, "ce_causationid": cause}
    return SimpleNamespace(headers=[(k, v.encode()) for k, v in headers.items()], value=b"{}")


def caused_by(key: str, kind: str = "ticket.responded") -> SimpleNamespace:
    cause = command_id(API_KEY_NAME, idempotency_key=key)
    return event(derive_id(cause, kind), cause, kind)


def test_each_accepted_command_made_one_event_and_copies_are_not_doubles():
    sent = Sent(accepted={"k1": derive_id(command_id(API_KEY_NAME, idempotency_key="k1"), "ticket.created")})
    sent.published.add("k2")
    records = [caused_by("k1", "ticket.created"), caused_by("k2"), caused_by("k2")]  # k2's event twice: a copy
    ledger = Ledger()
    commands_and_events(ledger, sent, records)
    assert (ledger.lost, ledger.doubled, ledger.duplicate_records, ledger.accepted) == ([], [], 1, 2)
    assert ledger.tickets == 1


def test_a_lost_and_a_doubled_command_are_found():
    sent = Sent(accepted={"gone": "no-such-event"})
    sent.published |= {"twice", "never"}
    cause = command_id(API_KEY_NAME, idempotency_key="twice")
    records = [event("e1", cause), event("e2", cause)]  # two distinct events for one command
    ledger = Ledger()
    commands_and_events(ledger, sent, records)
    assert len(ledger.lost) == 2 and "gone" in ledger.lost[0] and "never" in ledger.lost[1]
    assert len(ledger.doubled) == 1 and "twice" in ledger.doubled[0]


def test_only_the_bad_commands_may_be_dead_letters():
    topics = Topics.prefixed("p.")

    def letter(code: str, value: bytes = b"x") -> SimpleNamespace:
        headers = {"dlq_code": code, "dlq_source_topic": topics.commands, "dlq_service": "intake"}
        return SimpleNamespace(headers=[(k, v.encode()) for k, v in headers.items()], value=value)

    expected = [letter(code) for _, _, _, code in BAD_COMMANDS]
    ledger = Ledger()
    dead_letters(ledger, Sent(), expected, topics)
    assert ledger.unexpected_dead_letters == [] and sum(ledger.dead_letters.values()) == 5

    ledger = Ledger(lost=["topic command k9: no event and no dead letter"])
    refused = letter("ticket_resolved", orjson.dumps({"command_id": "k9"}))
    dead_letters(ledger, Sent(), [*expected[1:], refused], topics)
    assert len(ledger.unexpected_dead_letters) == 2  # the refused command, and a bad one never dead-lettered
    assert ledger.lost == []  # refused, not lost
