"""Redrive (`ladder dead-letters`, `ladder quarantine`) on the real broker and database: a
command dead-lettered because its ticket did not exist yet takes effect once after the
ticket exists, however often it is redriven; a dry run sends nothing; a quarantined outbox
record goes out once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from cli.main import main as ladder
from services.intake.core.commands import CreateTicketRequest
from services.intake.core.tickets import command_id, new_ticket_id
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from shared import envelope as ce
from shared.delivery.outbox import encode_headers
from shared.emitters import emitter
from shared.kafka import client_options
from tests.apps import in_process
from tests.builders import ticket_created
from tests.integration.intake.conftest import HELPDESK, KEYS, intake_env, signed, ticket_body
from tests.kafka_tools import TopicReader, private_topics


async def cli(monkeypatch, prefix: str, *argv: str) -> tuple[int, str]:
    """`ladder ...` as an operator runs it (in a thread: it runs its own event loop)."""
    monkeypatch.setenv("LADDER_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("LADDER_REDRIVE_API_KEY", KEYS["helpdesk"])
    monkeypatch.setenv("LADDER_REDRIVE_CLIENT", "helpdesk")

    def run() -> int:
        try:
            ladder(list(argv))
        except SystemExit as exit_:
            return int(exit_.code or 0)
        return 0

    return await asyncio.to_thread(run), ""


def of_type(records, ce_type: bytes):
    return [r for r in records if dict(r.headers).get("ce_type") == ce_type]


@pytest.fixture
async def private_intake(platform):
    async with private_topics(platform.kafka_bootstrap_servers) as (prefix, topics):
        env = intake_env(LADDER_TOPIC_PREFIX=prefix)
        async with in_process(create_app, IntakeSettings, env) as (_, client):
            yield prefix, topics, client, env["INTAKE_SCHEMA_NAME"]


async def test_a_command_for_a_ticket_that_did_not_exist_yet_takes_effect_once(
    platform, private_intake, monkeypatch, unique, capsys
):
    prefix, topics, client, _ = private_intake
    bootstrap = platform.kafka_bootstrap_servers
    body = ticket_body(unique, external_id=f"zd-{unique}")
    ticket = new_ticket_id("helpdesk", CreateTicketRequest(**body), "unused: the external id names it")
    respond = {"type": "record_response", "ticket_id": ticket, "tier": "L1", "agent_id": "ann"}
    async with TopicReader(bootstrap, topics.events) as events, TopicReader(bootstrap, topics.dead_letter) as dlq:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client_options())
        await producer.start()
        try:  # one with a command id, one identified by its record alone: both too early
            with_id = orjson.dumps({**respond, "command_id": f"r-{unique}"})
            await producer.send_and_wait(topics.commands, with_id, key=b"a", headers=signed(b"a", with_id))
            plain = orjson.dumps(respond)
            await producer.send_and_wait(topics.commands, plain, key=b"b", headers=signed(b"b", plain))
        finally:
            await producer.stop()
        await dlq.wait_for(lambda rs: len(rs) >= 2)
        assert {dict(r.headers)["dlq_code"] for r in dlq.records} == {b"unknown_ticket"}
        assert all("ladder_signature" not in dict(r.headers) for r in dlq.records)  # no credential kept

        created = await client.post("/v1/tickets", json=body, headers=HELPDESK)
        assert created.status_code == 201 and created.json()["ticket_id"] == ticket
        await events.wait_for(lambda rs: of_type(rs, b"ticket.created"))

        assert (await cli(monkeypatch, prefix, "dead-letters", "redrive", "--service", "intake", "--dry-run"))[0] == 0
        assert "dry run: 2 dead letter(s)" in capsys.readouterr().out
        await events.settle(2.0)
        assert of_type(events.records, b"ticket.responded") == []

        for _ in range(2):  # the second redrive finds the commands taken already: nothing more
            assert (await cli(monkeypatch, prefix, "dead-letters", "redrive", "--code", "unknown_ticket", "--yes"))[
                0
            ] == 0
            await events.settle(3.0)
        responded = of_type(events.records, b"ticket.responded")
        assert len(responded) == 2, [r.value for r in responded]
        assert {ce.decode(r.key, r.value, r.headers).ticket_id for r in responded} == {ticket}
        ids = {ce.decode(r.key, r.value, r.headers).id for r in responded}
        by_command_id = ce.derive_id(command_id("helpdesk", idempotency_key=f"r-{unique}"), "ticket.responded")
        assert len(ids) == 2 and by_command_id in ids  # one event per command, not two of one
        await dlq.settle(1.0)
        assert len(dlq.records) == 2  # nothing was dead-lettered again


async def test_a_quarantined_record_goes_out_once_and_a_dry_run_changes_nothing(
    platform, private_intake, monkeypatch, capsys
):
    prefix, topics, _, schema = private_intake
    now = datetime.now(UTC)
    event = ticket_created(str(uuid.uuid4()), now)
    envelope = ce.Envelope(event=event, id=ce.new_id(), source=emitter(event.TYPE), time=now, correlation_id="c")
    record = ce.encode(envelope)
    conn = await asyncpg.connect(platform.database_url)
    try:
        await conn.execute(
            f"INSERT INTO {schema}.outbox_quarantine (seq, topic, key, value, headers, created_at, reason) "
            "VALUES (4242, $1, $2, $3, $4, now(), 'MessageSizeTooLargeError')",
            topics.events,
            record.key,
            record.value,
            encode_headers(record.headers),
        )
        async with TopicReader(platform.kafka_bootstrap_servers, topics.events) as events:
            assert (await cli(monkeypatch, prefix, "quarantine", "redrive", "--schema", schema, "--all", "--dry-run"))[
                0
            ] == 0
            assert "would queue 4242" in capsys.readouterr().out
            await events.settle(1.5)
            assert events.records == []
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox_quarantine") == 1

            assert (await cli(monkeypatch, prefix, "quarantine", "redrive", "--schema", schema, "4242", "--yes"))[
                0
            ] == 0
            await events.wait_for(lambda rs: len(rs) >= 1)
            again = await cli(monkeypatch, prefix, "quarantine", "redrive", "--schema", schema, "4242", "--yes")
            assert again[0] == 1  # nothing left to redrive
            await events.settle(1.5)
            assert [ce.decode(r.key, r.value, r.headers).id for r in events.records] == [envelope.id]
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox_quarantine") == 0
    finally:
        await conn.close()
