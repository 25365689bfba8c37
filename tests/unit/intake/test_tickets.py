"""State rules of intake's core, exhaustively: every command against every ticket state."""

from datetime import UTC, datetime

import pytest

from services.intake.core.commands import (
    CreateTicketRequest,
    RateTicketRequest,
    RecordResponseRequest,
    ReopenTicketRequest,
    RequestEscalationRequest,
    ResolveTicketRequest,
    ReturnWithFixRequest,
)
from services.intake.core.tickets import (
    Accepted,
    PriorCommand,
    RejectCode,
    Rejected,
    Replayed,
    Status,
    Submission,
    Ticket,
    command_id,
    decide,
    fingerprint,
    new_ticket_id,
)
from shared.envelope import decode, encode
from shared.events import Channel, HandoffChecklist, Priority, Tier

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CREATE = CreateTicketRequest(
    customer_id="c-1", channel=Channel.CHAT, subject="VPN drops", intent="vpn", priority=Priority.P2
)
COMMANDS = {
    "respond": RecordResponseRequest(tier=Tier.L1, agent_id="a-1"),
    "escalate": RequestEscalationRequest(
        from_tier=Tier.L1,
        to_tier=Tier.L2,
        agent_id="a-1",
        checklist=HandoffChecklist(impact="one user"),
        hypothesis="MTU",
    ),
    "return": ReturnWithFixRequest(from_tier=Tier.L2, agent_id="a-2", fix_summary="lower MTU"),
    "resolve": ResolveTicketRequest(tier=Tier.L1, agent_id="a-1", resolution_code="workaround"),
    "reopen": ReopenTicketRequest(),
    "rate": RateTicketRequest(score=4),
}
OPEN = Ticket("t-1", correlation_id="e-0", created_fingerprint=fingerprint(CREATE), client="helpdesk")
RESOLVED = Ticket("t-1", "e-0", fingerprint(CREATE), status=Status.RESOLVED, client="helpdesk")
RATED = Ticket("t-1", "e-0", fingerprint(CREATE), status=Status.RESOLVED, rated=True, client="helpdesk")

# expected outcome per (command, state): an event type, or the rejection code
TABLE = {
    ("respond", "missing"): RejectCode.UNKNOWN_TICKET,
    ("respond", "open"): "ticket.responded",
    ("respond", "resolved"): RejectCode.TICKET_RESOLVED,
    ("respond", "rated"): RejectCode.TICKET_RESOLVED,
    ("escalate", "missing"): RejectCode.UNKNOWN_TICKET,
    ("escalate", "open"): "ticket.escalation_requested",
    ("escalate", "resolved"): RejectCode.TICKET_RESOLVED,
    ("escalate", "rated"): RejectCode.TICKET_RESOLVED,
    ("return", "missing"): RejectCode.UNKNOWN_TICKET,
    ("return", "open"): "ticket.return_requested",
    ("return", "resolved"): RejectCode.TICKET_RESOLVED,
    ("return", "rated"): RejectCode.TICKET_RESOLVED,
    ("resolve", "missing"): RejectCode.UNKNOWN_TICKET,
    ("resolve", "open"): "ticket.resolved",
    ("resolve", "resolved"): RejectCode.TICKET_RESOLVED,
    ("resolve", "rated"): RejectCode.TICKET_RESOLVED,
    ("reopen", "missing"): RejectCode.UNKNOWN_TICKET,
    ("reopen", "open"): RejectCode.TICKET_OPEN,
    ("reopen", "resolved"): "ticket.reopened",
    ("reopen", "rated"): "ticket.reopened",
    ("rate", "missing"): RejectCode.UNKNOWN_TICKET,
    ("rate", "open"): RejectCode.TICKET_OPEN,
    ("rate", "resolved"): "ticket.rated",
    ("rate", "rated"): RejectCode.ALREADY_RATED,
}
STATES = {"missing": None, "open": OPEN, "resolved": RESOLVED, "rated": RATED}


def submit(request, ticket_id="t-1", command="cmd-1", client="helpdesk", all_tickets=False):
    return Submission(request, ticket_id, command, client, NOW, all_tickets=all_tickets)


@pytest.mark.parametrize(("name", "state"), sorted(TABLE))
def test_every_command_in_every_state(name, state):
    decision = decide(STATES[state], None, submit(COMMANDS[name]))
    expected = TABLE[(name, state)]
    if isinstance(expected, RejectCode):
        assert isinstance(decision, Rejected) and decision.code is expected
        assert decision.reason
    else:
        assert isinstance(decision, Accepted)
        envelope = decision.envelope
        assert (envelope.type, envelope.ticket_id, envelope.causation_id) == (expected, "t-1", "cmd-1")
        assert envelope.correlation_id == "e-0"
        assert envelope.time == NOW


def test_state_transitions():
    resolved = decide(OPEN, None, submit(COMMANDS["resolve"]))
    assert resolved.ticket.status is Status.RESOLVED and not resolved.ticket.rated
    rated = decide(resolved.ticket, None, submit(COMMANDS["rate"], command="c2"))
    assert rated.ticket.rated
    reopened = decide(rated.ticket, None, submit(COMMANDS["reopen"], command="c3"))
    assert reopened.ticket.status is Status.OPEN and not reopened.ticket.rated
    again = decide(
        decide(reopened.ticket, None, submit(COMMANDS["resolve"], command="c4")).ticket,
        None,
        submit(COMMANDS["rate"], command="c5"),
    )
    assert isinstance(again, Accepted)  # a new resolution may be rated again


def test_every_event_carries_its_cycle_and_a_reopen_starts_the_next():
    created = decide(None, None, submit(CREATE))
    assert created.envelope.cycle == created.ticket.cycle == 1
    ticket, cycles = created.ticket, []
    for n, name in enumerate(["respond", "resolve", "rate", "reopen", "escalate", "resolve", "reopen", "respond"]):
        decision = decide(ticket, None, submit(COMMANDS[name], command=f"c{n}"))
        assert isinstance(decision, Accepted), name
        ticket = decision.ticket
        cycles.append((name, decision.envelope.cycle, ticket.cycle))
    assert cycles == [
        ("respond", 1, 1),
        ("resolve", 1, 1),
        ("rate", 1, 1),
        ("reopen", 2, 2),
        ("escalate", 2, 2),
        ("resolve", 2, 2),
        ("reopen", 3, 3),
        ("respond", 3, 3),
    ]


def test_create_makes_the_ticket_and_its_correlation():
    decision = decide(None, None, submit(CREATE, ticket_id="t-9"))
    assert isinstance(decision, Accepted)
    envelope = decision.envelope
    assert envelope.type == "ticket.created"
    assert envelope.correlation_id == envelope.id == decision.ticket.correlation_id
    assert envelope.event.created_at == NOW  # defaulted to receipt time
    record = encode(envelope)  # the event (built without re-validation) passes the strict decoder
    assert decode(record.key, record.value, record.headers) == envelope
    assert decision.ticket.status is Status.OPEN


def test_event_ids_derive_from_the_command():
    first = decide(OPEN, None, submit(COMMANDS["respond"], command="x"))
    second = decide(OPEN, None, submit(COMMANDS["respond"], command="x"))
    other = decide(OPEN, None, submit(COMMANDS["respond"], command="y"))
    assert first.envelope.id == second.envelope.id != other.envelope.id


def test_repeated_command_replays_or_conflicts():
    prior = PriorCommand(fingerprint(COMMANDS["resolve"], "t-1"), "t-1", "e-5", "ticket.resolved")
    # Same content: the original answer, even though the ticket is resolved by now.
    assert decide(RESOLVED, prior, submit(COMMANDS["resolve"])) == Replayed("t-1", "e-5", "ticket.resolved")
    different = ResolveTicketRequest(tier=Tier.L2, agent_id="a-1", resolution_code="workaround")
    decision = decide(OPEN, prior, submit(different))
    assert isinstance(decision, Rejected) and decision.code is RejectCode.REUSED_KEY
    # The same body on another ticket is another request: one key names one request.
    elsewhere = decide(OPEN, prior, submit(COMMANDS["resolve"], ticket_id="t-2"))
    assert isinstance(elsewhere, Rejected) and elsewhere.code is RejectCode.REUSED_KEY


def test_create_for_existing_upstream_ticket():
    assert decide(OPEN, None, submit(CREATE)) == Replayed("t-1", "e-0", "ticket.created")
    changed = CREATE.model_copy(update={"subject": "something else"})
    decision = decide(OPEN, None, submit(changed))
    assert isinstance(decision, Rejected) and decision.code is RejectCode.TICKET_EXISTS


def test_identity_derivation():
    assert command_id("a", idempotency_key="k") == command_id("a", idempotency_key="k")
    assert command_id("a", idempotency_key="k") != command_id("b", idempotency_key="k")
    with_ext = CREATE.model_copy(update={"external_id": "ZD-1"})
    assert new_ticket_id("a", with_ext, "c1") == new_ticket_id("a", with_ext, "c2")  # upstream id wins
    assert new_ticket_id("a", with_ext, "c1") != new_ticket_id("b", with_ext, "c1")
    assert new_ticket_id("a", CREATE, "c1") == new_ticket_id("a", CREATE, "c1") != new_ticket_id("a", CREATE, "c2")


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("state", ["open", "resolved", "rated"])
def test_another_clients_ticket_is_unknown_like_a_missing_one(name, state):
    """Scope: the chatbot cannot act on the help desk's ticket, whatever the command and
    state, and learns nothing it could not learn about a ticket that does not exist."""
    foreign = decide(STATES[state], None, submit(COMMANDS[name], client="chatbot"))
    missing = decide(None, None, submit(COMMANDS[name], client="chatbot"))
    assert isinstance(foreign, Rejected) and foreign == missing
    assert foreign.code is RejectCode.UNKNOWN_TICKET
    legacy = Ticket("t-1", "e-0", fingerprint(CREATE))  # created before clients were remembered
    assert decide(legacy, None, submit(COMMANDS[name])) == missing


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_key_granted_every_ticket_acts_on_any(name):
    state = OPEN if name not in ("reopen", "rate") else RESOLVED
    decision = decide(state, None, submit(COMMANDS[name], client="deskops", all_tickets=True))
    assert isinstance(decision, Accepted)
    assert decision.envelope.client == "deskops"
    assert decision.ticket.client == "helpdesk"  # acting on a ticket does not make it yours


def test_every_event_names_its_client_and_the_agent_given():
    created = decide(None, None, submit(CREATE, client="chatbot"))
    assert created.ticket.client == "chatbot"
    assert (created.envelope.client, created.envelope.agent) == ("chatbot", None)
    responded = decide(created.ticket, None, submit(COMMANDS["respond"], command="c2", client="chatbot"))
    assert (responded.envelope.client, responded.envelope.agent) == ("chatbot", "a-1")
    record = encode(responded.envelope)
    assert ("ce_client", b"chatbot") in record.headers
    assert ("ce_agent", b"a-1") in record.headers
    assert decode(record.key, record.value, record.headers) == responded.envelope
