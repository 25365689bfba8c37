"""Contract of intake's batch use case over a `Store`, run against every implementation
(the in-memory fake in tests/unit, PostgreSQL in tests/integration) so the fake cannot drift.

A test module that imports `IntakeStoreContract` provides a `probe` fixture: a store, a way
to read its outbox and its remembered commands, and a prefix that keeps ids unique."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from services.intake.core.commands import (
    CreateTicketRequest,
    RateTicketRequest,
    RecordResponseRequest,
    ReopenTicketRequest,
    ResolveTicketRequest,
)
from services.intake.core.tickets import Accepted, RejectCode, Rejected, Replayed, Submission
from services.intake.service import FromTopic, Poison, process
from shared import topics
from shared.delivery.records import Rejection, SourceRecord
from shared.events import Channel, Tier


async def decide_batch(store, entries):
    return (await process(store, entries)).decisions


NOW = datetime(2026, 11, 23, tzinfo=UTC)
CREATE = CreateTicketRequest(customer_id="c", channel=Channel.WEB, subject="s", intent="x")
RESOLVE = ResolveTicketRequest(tier=Tier.L1, agent_id="a", resolution_code="done")


class IntakeStoreContract:
    def sub(self, probe, request, ticket="t-1", command="c-1", repeatable=True):
        return Submission(request, probe.id(ticket), probe.id(command), "helpdesk", NOW, repeatable=repeatable)

    def source(self, probe, offset, value=b"{}"):
        return SourceRecord(
            topics.TICKET_COMMANDS,
            0,
            offset,
            1_700_000_000_000,
            b"k",
            value,
            [("authorization", b"Bearer secret"), ("trace", b"1")],
        )

    async def test_later_commands_in_a_batch_see_earlier_ones(self, probe):
        decisions = await decide_batch(
            probe.store,
            [
                self.sub(probe, CREATE, command="c-1"),
                self.sub(probe, RESOLVE, command="c-2"),
                self.sub(probe, RESOLVE, command="c-3"),
                self.sub(probe, RateTicketRequest(score=5), command="c-4"),
            ],
        )
        assert [type(d) for d in decisions] == [Accepted, Accepted, Rejected, Accepted]
        outbox = await probe.outbox()
        assert [r.topic for r in outbox] == [topics.TICKET_EVENTS] * 3
        assert [dict(r.headers)["ce_type"] for r in outbox] == [b"ticket.created", b"ticket.resolved", b"ticket.rated"]

    async def test_duplicates_in_one_batch_and_across_batches_produce_one_event(self, probe):
        first, second = await decide_batch(
            probe.store, [self.sub(probe, CREATE, command="same"), self.sub(probe, CREATE, command="same")]
        )
        assert isinstance(first, Accepted)
        assert second == Replayed(probe.id("t-1"), first.envelope.id, "ticket.created")
        (third,) = await decide_batch(probe.store, [self.sub(probe, CREATE, command="same")])
        assert third == second
        assert len(await probe.outbox()) == 1

    async def test_state_survives_between_batches(self, probe):
        await decide_batch(probe.store, [self.sub(probe, CREATE, command="c-1")])
        await decide_batch(probe.store, [self.sub(probe, RESOLVE, command="c-2")])
        (again,) = await decide_batch(probe.store, [self.sub(probe, RESOLVE, command="c-3")])
        assert isinstance(again, Rejected) and again.code is RejectCode.TICKET_RESOLVED
        (rated,) = await decide_batch(probe.store, [self.sub(probe, RateTicketRequest(score=1), command="c-4")])
        assert isinstance(rated, Accepted)

    async def test_the_cycle_survives_between_batches(self, probe):
        await decide_batch(
            probe.store, [self.sub(probe, CREATE, command="c-1"), self.sub(probe, RESOLVE, command="c-2")]
        )
        (reopened,) = await decide_batch(probe.store, [self.sub(probe, ReopenTicketRequest(), command="c-3")])
        (resolved,) = await decide_batch(probe.store, [self.sub(probe, RESOLVE, command="c-4")])
        assert isinstance(reopened, Accepted) and isinstance(resolved, Accepted)
        assert (reopened.envelope.cycle, resolved.envelope.cycle) == (2, 2)
        assert [dict(r.headers)["ce_cycle"] for r in await probe.outbox()] == [b"1", b"1", b"2", b"2"]

    async def test_topic_rejections_and_poison_are_dead_lettered_once(self, probe):
        await decide_batch(probe.store, [self.sub(probe, CREATE, ticket="open", command="c-0")])
        rate = RateTicketRequest(score=5)
        rejected = FromTopic(self.sub(probe, rate, ticket="open", command="c-9"), self.source(probe, 5))
        poison = Poison(probe.id("p-1"), self.source(probe, 6, b"garbage"), Rejection("not_json", "not JSON"))
        decisions = await decide_batch(probe.store, [rejected, poison])
        assert [d.code for d in decisions] == [RejectCode.TICKET_OPEN, RejectCode.MALFORMED]
        outbox = (await probe.outbox())[1:]
        assert [r.topic for r in outbox] == [topics.DEAD_LETTER] * 2
        headers = dict(outbox[1].headers)
        assert outbox[1].value == b"garbage"
        assert headers["dlq_reason"] == b"not JSON" and headers["dlq_code"] == b"not_json"
        assert headers["dlq_source_offset"] == b"6" and headers["trace"] == b"1"
        assert "authorization" not in headers  # credentials never reach the dead-letter topic
        # Redelivery of the same records (crash before the offset commit): nothing new.
        await decide_batch(probe.store, [rejected, poison])
        assert len(await probe.outbox()) == 3

    async def waiting(self, probe, ticket):
        async with probe.store.transaction() as tx:
            await tx.lock([probe.id(ticket)], [])
            return await tx.waiting([probe.id(ticket)])

    async def test_a_follow_up_before_its_create_waits_and_keeps_its_order(self, probe):
        """Invariant 5: read before the create (another partition), a follow-up waits; a later
        command for the ticket waits behind it; once the create is in, both are decided in order."""
        wait = timedelta(minutes=1)
        respond = FromTopic(
            self.sub(probe, RecordResponseRequest(tier=Tier.L1, agent_id="ann"), ticket="w", command="c-r"),
            self.source(probe, 1),
        )
        resolve = FromTopic(self.sub(probe, RESOLVE, ticket="w", command="c-s"), self.source(probe, 2))
        first = await process(probe.store, [respond], wait=wait, now=lambda: NOW)
        assert first.dead_letters == [] and first.waiting == 1
        await process(
            probe.store, [resolve], wait=wait, now=lambda: NOW
        )  # would overtake the response: waits behind it
        await process(probe.store, [respond], wait=wait, now=lambda: NOW)  # a redelivery waits once
        assert [w.command_id for w in await self.waiting(probe, "w")] == [probe.id("c-r"), probe.id("c-s")]
        assert await probe.remembered("c-r") is None
        (created,) = await decide_batch(probe.store, [self.sub(probe, CREATE, ticket="w", command="c-c")])
        assert isinstance(created, Accepted)
        # The retry reads the waiting ones again, oldest first; the resolve cannot go before the response.
        rows = await self.waiting(probe, "w")
        retried = [replace(e, waiting=row.seq) for e, row in zip([resolve, respond], reversed(rows), strict=True)]
        decisions = (await process(probe.store, retried, wait=wait, now=lambda: NOW)).decisions
        # Out of order on purpose: the resolve still waits (the response heads the line), the response goes.
        assert [type(d) for d in decisions] == [Rejected, Accepted]
        decisions = (await process(probe.store, retried, wait=wait, now=lambda: NOW)).decisions
        assert [type(d) for d in decisions] == [Accepted, Rejected]  # the response is done: not decided twice
        assert await self.waiting(probe, "w") == []
        types = [dict(r.headers).get("ce_type") for r in await probe.outbox()]
        assert types == [b"ticket.created", b"ticket.responded", b"ticket.resolved"]

    async def test_past_the_wait_unknown_ticket_is_dead_lettered_but_never_final(self, probe):
        late = FromTopic(self.sub(probe, RESOLVE, ticket="late", command="c-l"), self.source(probe, 3))
        outcome = await process(probe.store, [late], now=lambda: NOW + timedelta(minutes=2), wait=timedelta(minutes=1))
        assert outcome.dead_letters == ["unknown_ticket"] and outcome.waiting == 0
        assert await probe.remembered("c-l") is None  # the same command may come again
        await decide_batch(probe.store, [self.sub(probe, CREATE, ticket="late", command="c-c")])
        (decision,) = await decide_batch(probe.store, [late])
        assert isinstance(decision, Accepted)

    async def test_unrepeatable_commands_and_http_rejections_are_not_remembered(self, probe):
        (rejected,) = await decide_batch(probe.store, [self.sub(probe, RESOLVE, ticket="nope", command="c-1")])
        assert isinstance(rejected, Rejected)
        (created,) = await decide_batch(probe.store, [self.sub(probe, CREATE, command="c-2", repeatable=False)])
        assert isinstance(created, Accepted)
        assert await probe.remembered("c-1") is None and await probe.remembered("c-2") is None
        assert len(await probe.outbox()) == 1

    async def test_dead_letter_body_is_kept_verbatim(self, probe):
        raw = orjson.dumps({"type": "x", "subject": "private text"}) + b"\x00\xff"
        await decide_batch(
            probe.store, [Poison(probe.id("p"), self.source(probe, 1, raw), Rejection("invalid_command", "invalid x"))]
        )
        assert (await probe.outbox())[0].value == raw

    async def test_a_reused_command_id_with_other_content_is_dead_lettered(self, probe):
        await decide_batch(probe.store, [FromTopic(self.sub(probe, CREATE, command="c-1"), self.source(probe, 1))])
        other = FromTopic(self.sub(probe, RESOLVE, command="c-1"), self.source(probe, 2))
        (decision,) = await decide_batch(probe.store, [other])
        assert isinstance(decision, Rejected) and decision.code is RejectCode.REUSED_KEY
        assert [r.topic for r in await probe.outbox()] == [topics.TICKET_EVENTS, topics.DEAD_LETTER]
        (again,) = await decide_batch(probe.store, [other])  # the command id keeps its first outcome
        assert isinstance(again, Rejected)
        assert (await probe.remembered("c-1")).event_type == "ticket.created"

    async def test_a_redelivered_record_keeps_its_first_outcome(self, probe):
        """Judged poison once (say, under an older key ring), the same record is not judged again."""
        import hashlib

        raw = b'{"type": "create_ticket"}'
        await decide_batch(
            probe.store,
            [Poison(probe.id("r-1"), self.source(probe, 3, raw), Rejection("unauthenticated", "unauthenticated"))],
        )
        again = Submission(
            CREATE,
            probe.id("t-r"),
            probe.id("r-1"),
            "helpdesk",
            NOW,
            record_fingerprint=hashlib.sha256(raw).hexdigest(),
        )
        (decision,) = await decide_batch(probe.store, [FromTopic(again, self.source(probe, 3, raw))])
        assert isinstance(decision, Replayed)
        assert [r.topic for r in await probe.outbox()] == [topics.DEAD_LETTER]

    async def test_one_key_names_one_request(self, probe):
        """The same idempotency key with the same body on another ticket is a reuse, not a replay."""
        await decide_batch(
            probe.store,
            [self.sub(probe, CREATE, ticket="a", command="ca"), self.sub(probe, CREATE, ticket="b", command="cb")],
        )
        respond = RecordResponseRequest(tier=Tier.L1, agent_id="ann")
        (first,) = await decide_batch(probe.store, [self.sub(probe, respond, ticket="a", command="k")])
        (again,) = await decide_batch(probe.store, [self.sub(probe, respond, ticket="a", command="k")])
        (other,) = await decide_batch(probe.store, [self.sub(probe, respond, ticket="b", command="k")])
        assert isinstance(first, Accepted) and isinstance(again, Replayed)
        assert isinstance(other, Rejected) and other.code is RejectCode.REUSED_KEY
        responded = [r for r in await probe.outbox() if dict(r.headers)["ce_type"] == b"ticket.responded"]
        assert [r.key for r in responded] == [probe.id("a").encode()]

    async def test_dead_letters_are_reported_by_code(self, probe):
        poison = Poison(probe.id("p-9"), self.source(probe, 9, b"x"), Rejection("not_json", "not JSON"))
        rejected = FromTopic(self.sub(probe, RESOLVE, ticket="nope", command="c-8"), self.source(probe, 8))
        outcome = await process(probe.store, [poison, rejected])
        assert outcome.dead_letters == ["not_json", "unknown_ticket"]
        assert (await process(probe.store, [poison])).dead_letters == []  # a redelivery dead-letters nothing
