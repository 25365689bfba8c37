"""Many upstream clients on one intake: a client acts only on its own tickets (unless its key
is granted every ticket), a foreign ticket looks exactly like a missing one, nothing about it
reaches the stream, and every event names the client that acted (ce_client) and the agent."""

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared import envelope as ce
from shared import topics
from shared.kafka import client_options
from tests.integration.intake.conftest import CHATBOT, DESKOPS, HELPDESK, signed, ticket_body

RESPOND = {"tier": "L2", "agent_id": "bot-7"}


@pytest.fixture
async def producer(platform):
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", **client_options())
    await producer.start()
    yield producer
    await producer.stop()


async def test_another_clients_ticket_is_404_like_a_missing_one_and_nothing_is_emitted(intake, events, unique):
    created = await intake.post("/v1/tickets", json=ticket_body(unique), headers=HELPDESK)
    ticket = created.json()["ticket_id"]
    foreign = await intake.post(f"/v1/tickets/{ticket}/responses", json=RESPOND, headers=CHATBOT)
    missing = await intake.post(f"/v1/tickets/missing-{unique}/responses", json=RESPOND, headers=CHATBOT)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"] == missing.json()["error"] == "unknown_ticket"
    assert ticket in foreign.json()["detail"] and f"missing-{unique}" in missing.json()["detail"]
    assert foreign.json()["detail"].replace(ticket, "X") == missing.json()["detail"].replace(f"missing-{unique}", "X")
    # The owner still acts; the foreign attempt left no trace on the ticket's stream.
    own = await intake.post(f"/v1/tickets/{ticket}/responses", json={**RESPOND, "agent_id": "ann"}, headers=HELPDESK)
    assert own.status_code == 202
    records = await events.wait_for(lambda rs: len([r for r in rs if r.key == ticket.encode()]) >= 2)
    await events.settle(1.0)
    mine = [ce.decode(r.key, r.value, r.headers) for r in events.records if r.key == ticket.encode()]
    assert [(m.type, m.client, m.agent) for m in mine] == [
        ("ticket.created", "helpdesk", None),
        ("ticket.responded", "helpdesk", "ann"),
    ]
    assert records


async def test_a_key_granted_every_ticket_acts_on_any_and_is_named(intake, events, unique):
    created = await intake.post("/v1/tickets", json=ticket_body(unique), headers=CHATBOT)
    ticket = created.json()["ticket_id"]
    resolved = await intake.post(
        f"/v1/tickets/{ticket}/resolution",
        json={"tier": "L1", "agent_id": "ops-1", "resolution_code": "done"},
        headers=DESKOPS,
    )
    assert resolved.status_code == 202
    await events.wait_for(lambda rs: len([r for r in rs if r.key == ticket.encode()]) >= 2)
    mine = [ce.decode(r.key, r.value, r.headers) for r in events.records if r.key == ticket.encode()]
    assert [(m.type, m.client, m.agent) for m in mine] == [
        ("ticket.created", "chatbot", None),
        ("ticket.resolved", "deskops", "ops-1"),
    ]


async def test_a_topic_command_on_another_clients_ticket_is_dead_lettered_unknown(
    intake, events, dead_letters, producer, unique
):
    created = await intake.post("/v1/tickets", json=ticket_body(unique), headers=HELPDESK)
    ticket = created.json()["ticket_id"]
    value = orjson.dumps({"type": "record_response", "ticket_id": ticket, **RESPOND})
    meta = await producer.send_and_wait(
        topics.TICKET_COMMANDS, value, key=ticket.encode(), headers=signed(ticket.encode(), value, "chatbot")
    )

    def mine(records):
        return [
            r
            for r in records
            if dict(r.headers).get("dlq_source_offset") == str(meta.offset).encode()
            and dict(r.headers).get("dlq_source_partition") == str(meta.partition).encode()
        ]

    (dead,) = mine(await dead_letters.wait_for(mine))
    assert dict(dead.headers)["dlq_code"] == b"unknown_ticket"
    await events.settle(1.0)
    assert [dict(r.headers)["ce_type"] for r in events.records if r.key == ticket.encode()] == [b"ticket.created"]
