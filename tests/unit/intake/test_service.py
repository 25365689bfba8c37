"""The batch use case over the in-memory store: ordering within a batch, replays, dead letters."""

from datetime import UTC, datetime

import orjson

from shared import topics
from shared.deadletter import SourceRecord
from shared.events import Channel, Tier
from services.intake.core.commands import CreateTicketRequest, RateTicketRequest, ResolveTicketRequest
from services.intake.core.tickets import Accepted, Rejected, RejectCode, Replayed, Submission
from services.intake.service import FromTopic, Poison, process
from tests.unit.intake.fakes import InMemoryStore

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CREATE = CreateTicketRequest(customer_id="c", channel=Channel.WEB, subject="s", intent="x")
RESOLVE = ResolveTicketRequest(tier=Tier.L1, agent_id="a", resolution_code="done")


def sub(request, ticket="t-1", command="c-1"):
    return Submission(request, ticket, command, "helpdesk", NOW)


def source(offset, value=b"{}"):
    return SourceRecord(topics.TICKET_COMMANDS, 0, offset, 1_700_000_000_000, b"k", value,
                        [("authorization", b"Bearer secret"), ("trace", b"1")])


async def test_later_commands_in_a_batch_see_earlier_ones():
    store = InMemoryStore()
    decisions = await process(store, [sub(CREATE, command="c-1"), sub(RESOLVE, command="c-2"),
                                      sub(RESOLVE, command="c-3"), sub(RateTicketRequest(score=5), command="c-4")])
    assert [type(d) for d in decisions] == [Accepted, Accepted, Rejected, Accepted]
    assert [r.topic for r in store.outbox] == [topics.TICKET_EVENTS] * 3
    assert [dict(r.headers)["ce_type"] for r in store.outbox] == [b"ticket.created", b"ticket.resolved", b"ticket.rated"]


async def test_duplicates_in_one_batch_and_across_batches_produce_one_event():
    store = InMemoryStore()
    first, second = await process(store, [sub(CREATE, command="same"), sub(CREATE, command="same")])
    assert isinstance(first, Accepted) and second == Replayed("t-1", first.envelope.id, "ticket.created")
    (third,) = await process(store, [sub(CREATE, command="same")])
    assert third == second
    assert len(store.outbox) == 1


async def test_topic_rejections_and_poison_are_dead_lettered_once():
    store = InMemoryStore()
    rejected = FromTopic(sub(RESOLVE, ticket="nope", command="c-9"), source(5))
    poison = Poison("p-1", source(6, b"garbage"), "not JSON")
    decisions = await process(store, [rejected, poison])
    assert [d.code for d in decisions] == [RejectCode.UNKNOWN_TICKET, RejectCode.MALFORMED]
    assert [r.topic for r in store.outbox] == [topics.DEAD_LETTER] * 2
    dead = store.outbox[1]
    headers = dict(dead.headers)
    assert dead.value == b"garbage"
    assert headers[b"dlq_reason".decode()] == b"not JSON"
    assert headers["dlq_source_offset"] == b"6" and headers["trace"] == b"1"
    assert "authorization" not in headers  # credentials never reach the dead-letter topic
    # Redelivery of the same records (crash before the offset commit): nothing new.
    await process(store, [rejected, poison])
    assert len(store.outbox) == 2


async def test_http_rejections_are_not_remembered():
    store = InMemoryStore()
    (decision,) = await process(store, [sub(RESOLVE, ticket="nope")])
    assert isinstance(decision, Rejected)
    assert store.outbox == [] and store.commands == {}


async def test_dead_letter_body_is_kept_verbatim():
    store = InMemoryStore()
    raw = orjson.dumps({"type": "x", "subject": "private text"})
    await process(store, [Poison("p", source(1, raw), "invalid x")])
    assert store.outbox[0].value == raw


async def test_a_reused_command_id_with_other_content_is_dead_lettered_once():
    store = InMemoryStore()
    await process(store, [FromTopic(sub(CREATE, command="c-1"), source(1))])
    other = FromTopic(sub(RESOLVE, command="c-1"), source(2))
    (decision,) = await process(store, [other])
    assert isinstance(decision, Rejected) and decision.code is RejectCode.REUSED_KEY
    assert [r.topic for r in store.outbox] == [topics.TICKET_EVENTS, topics.DEAD_LETTER]
    (again,) = await process(store, [other])  # the command id keeps its first outcome
    assert isinstance(again, Rejected)
    assert store.commands["c-1"].event_type == "ticket.created"
