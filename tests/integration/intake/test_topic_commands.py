"""Commands published on support.ticket-commands: events for valid ones, dead letters for the
rest, and the consumer keeps flowing."""

import asyncio
import subprocess

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared import envelope as ce
from shared import topics
from shared.kafka import client_options
from tests.integration.intake.conftest import CHATBOT, HELPDESK
from tests.kafka_tools import kcat


@pytest.fixture
async def producer(platform):
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", **client_options())
    await producer.start()
    yield producer
    await producer.stop()


async def send(producer, command, auth=HELPDESK, key=b"k"):
    value = command if isinstance(command, bytes) else orjson.dumps(command)
    headers = [("authorization", auth["Authorization"].encode())] if auth else []
    return await producer.send_and_wait(topics.TICKET_COMMANDS, value, key=key, headers=headers)


def create(unique, **changes):
    return {
        "type": "create_ticket",
        "command_id": f"create-{unique}",
        "customer_id": "c",
        "channel": "chat",
        "subject": "App crashes on start",
        "intent": "crash",
        "priority": "P2",
        **changes,
    }


def of_type(records, ce_type):
    return [r for r in records if dict(r.headers).get("ce_type") == ce_type]


async def test_each_command_type_becomes_its_event(intake, events, producer, unique):
    subject = f"App crashes {unique}".encode()
    await send(producer, create(unique, subject=subject.decode()))
    records = await events.wait_for(lambda rs: [r for r in of_type(rs, b"ticket.created") if subject in r.value])
    (created,) = [r for r in of_type(records, b"ticket.created") if subject in r.value]
    ticket = created.key.decode()
    follow_ups = [
        {"type": "record_response", "tier": "L1", "agent_id": "ann"},
        {
            "type": "request_escalation",
            "from_tier": "L1",
            "to_tier": "L3",
            "agent_id": "ann",
            "checklist": {"impact": "all iOS users"},
            "hypothesis": "bad release 4.2",
        },
        {"type": "return_with_fix", "from_tier": "L3", "agent_id": "eng", "fix_summary": "rolled back"},
        {"type": "resolve_ticket", "tier": "L1", "agent_id": "ann", "resolution_code": "rollback"},
        {"type": "rate_ticket", "score": 2},
        {"type": "reopen_ticket"},
    ]
    for command in follow_ups:
        await send(producer, {**command, "ticket_id": ticket}, key=ticket.encode())
    await events.wait_for(lambda rs: len([r for r in rs if r.key == created.key]) >= 7)
    mine = [ce.decode(r.key, r.value, r.headers) for r in events.records if r.key == created.key]
    assert [m.type for m in mine] == [
        "ticket.created",
        "ticket.responded",
        "ticket.escalation_requested",
        "ticket.return_requested",
        "ticket.resolved",
        "ticket.rated",
        "ticket.reopened",
    ]
    assert all(m.correlation_id == mine[0].id for m in mine)
    assert len({m.causation_id for m in mine}) == 7


async def test_garbage_is_dead_lettered_and_the_next_command_flows(intake, events, dead_letters, producer, unique):
    garbage = [
        (b"\xde\xad\xbe\xef", "not JSON"),
        (orjson.dumps({"type": "teleport_ticket", "ticket_id": "t"}), "unknown command type"),
        (orjson.dumps(create(unique, channel="telegraph", command_id=None)), "channel"),
        (orjson.dumps(create(unique, subject="x" * 9000)), "too large"),
    ]
    sent = [await send(producer, value) for value, _ in garbage]
    forbidden = await send(
        producer,
        {"type": "resolve_ticket", "ticket_id": "t-1", "tier": "L1", "agent_id": "b", "resolution_code": "x"},
        auth=CHATBOT,
    )
    unknown = await send(producer, {"type": "reopen_ticket", "ticket_id": f"missing-{unique}"})
    unauthenticated = await send(producer, create(unique, command_id=f"noauth-{unique}"), auth=None)
    await send(producer, create(unique, command_id=f"after-garbage-{unique}", subject=f"after garbage {unique}"))

    positions = {(m.partition, m.offset) for m in [*sent, forbidden, unknown, unauthenticated]}
    records = await dead_letters.wait_for(
        lambda rs: (
            positions
            <= {(int(dict(r.headers)["dlq_source_partition"]), int(dict(r.headers)["dlq_source_offset"])) for r in rs}
        )
    )
    by_offset = {
        (int(dict(r.headers)["dlq_source_partition"]), int(dict(r.headers)["dlq_source_offset"])): r for r in records
    }
    for (value, reason), meta in zip(garbage, sent, strict=True):
        dead = by_offset[(meta.partition, meta.offset)]
        assert dead.value == value  # original bytes, verbatim
        headers = dict(dead.headers)
        assert reason in headers["dlq_reason"].decode()
        assert b"teleport" not in headers["dlq_reason"]  # client text is never echoed
        assert headers["dlq_source_topic"] == topics.TICKET_COMMANDS.encode()
        assert "authorization" not in headers
    assert b"forbidden" in dict(by_offset[(forbidden.partition, forbidden.offset)].headers)["dlq_reason"]
    assert b"unknown_ticket" in dict(by_offset[(unknown.partition, unknown.offset)].headers)["dlq_reason"]
    assert (
        b"unauthenticated" in dict(by_offset[(unauthenticated.partition, unauthenticated.offset)].headers)["dlq_reason"]
    )
    # the valid command after the garbage still became an event
    await events.wait_for(
        lambda rs: [r for r in of_type(rs, b"ticket.created") if f"after garbage {unique}".encode() in r.value]
    )


async def test_kcat_written_garbage_is_dead_lettered(intake, dead_letters, platform, unique):
    marker = f"kcat-garbage-{unique}"
    await asyncio.to_thread(
        subprocess.run,
        kcat(
            platform.kafka_bootstrap_servers,
            "-P",
            "-t",
            topics.TICKET_COMMANDS,
            "-k",
            "x",
            "-H",
            f"authorization={HELPDESK['Authorization']}",
        ),
        input=marker.encode(),
        check=True,
        timeout=30,
    )
    (dead,) = [
        r
        for r in await dead_letters.wait_for(lambda rs: any(r.value == marker.encode() for r in rs))
        if r.value == marker.encode()
    ]
    assert dict(dead.headers)["dlq_reason"] == b"not JSON"
    assert dict(dead.headers)["dlq_service"] == b"intake"


async def test_repeated_command_id_is_one_event(intake, events, producer, unique):
    for _ in range(3):
        await send(producer, create(unique, command_id=f"dup-{unique}", subject=f"dup {unique}"))
    await events.wait_for(lambda rs: [r for r in rs if f"dup {unique}".encode() in r.value])
    await events.settle(2.0)
    assert len([r for r in events.records if f"dup {unique}".encode() in r.value]) == 1
