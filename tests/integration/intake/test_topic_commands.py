"""Commands published on support.ticket-commands: events for valid ones, dead letters for the
rest, and the consumer keeps flowing."""

import asyncio
import shlex
import subprocess

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared import envelope as ce
from shared import topics
from shared.kafka import client_options
from tests.integration.intake.conftest import KEYS, signed
from tests.kafka_tools import kcat


@pytest.fixture
async def producer(platform):
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", **client_options())
    await producer.start()
    yield producer
    await producer.stop()


async def send(producer, command, auth="helpdesk", key=b"k"):
    value = command if isinstance(command, bytes) else orjson.dumps(command)
    headers = signed(key, value, auth) if auth else []
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
        auth="chatbot",
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
        assert "ladder_signature" not in headers
    assert b"forbidden" in dict(by_offset[(forbidden.partition, forbidden.offset)].headers)["dlq_reason"]
    assert b"unknown_ticket" in dict(by_offset[(unknown.partition, unknown.offset)].headers)["dlq_reason"]
    assert (
        b"unauthenticated" in dict(by_offset[(unauthenticated.partition, unauthenticated.offset)].headers)["dlq_reason"]
    )
    # the valid command after the garbage still became an event
    await events.wait_for(
        lambda rs: [r for r in of_type(rs, b"ticket.created") if f"after garbage {unique}".encode() in r.value]
    )


# The README's shell example, verbatim: sign with openssl, publish with kcat.
SIGN_AND_SEND = r"""
ts=$(date +%s)
hmac_key=$(printf '%s' "$LADDER_API_KEY" | openssl dgst -sha256 -r | cut -d' ' -f1)
signature=$(printf 'v1\n%s\n%s\n%s\n%s' "$ts" "$LADDER_CLIENT" "$KEY" "$BODY" |
  openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hmac_key" -r | cut -d' ' -f1)
printf '%s' "$BODY" | kcat -P -b "$KAFKA" -t support.ticket-commands -k "$KEY" \
  -H "ladder_client=$LADDER_CLIENT" -H "ladder_timestamp=$ts" -H "ladder_signature=v1=$signature"
"""


async def shell_send(platform, body: bytes, key: str, api_key: str = KEYS["helpdesk"]) -> None:
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "LADDER_API_KEY": api_key,
        "LADDER_CLIENT": "helpdesk",
        "KEY": key,
        "BODY": body.decode(),
        "KAFKA": platform.kafka_bootstrap_servers,
    }
    # The README's lines, with kcat's connection options for the broker at hand (TLS, SASL).
    script = SIGN_AND_SEND.replace('kcat -P -b "$KAFKA"', shlex.join(kcat(platform.kafka_bootstrap_servers, "-P")))
    await asyncio.to_thread(subprocess.run, ["bash", "-ec", script], env=env, check=True, timeout=30)


async def test_a_command_signed_in_shell_with_openssl_is_read(intake, events, platform, unique):
    subject = f"signed in shell {unique}"
    await shell_send(platform, orjson.dumps(create(unique, subject=subject)), key=f"shell-{unique}")
    (created,) = [
        r
        for r in await events.wait_for(lambda rs: any(subject.encode() in r.value for r in rs))
        if subject.encode() in r.value
    ]
    assert dict(created.headers)["ce_client"] == b"helpdesk"


async def test_kcat_written_garbage_is_dead_lettered(intake, dead_letters, platform, unique):
    marker = f"kcat-garbage-{unique}"
    await shell_send(platform, marker.encode(), key="x")
    wrong = f"kcat-wrong-key-{unique}"
    await shell_send(platform, wrong.encode(), key="x", api_key="not-the-key")
    records = await dead_letters.wait_for(lambda rs: {marker.encode(), wrong.encode()} <= {r.value for r in rs})
    (dead,) = [r for r in records if r.value == marker.encode()]
    assert dict(dead.headers)["dlq_reason"] == b"not JSON"
    assert dict(dead.headers)["dlq_service"] == b"intake"
    (refused,) = [r for r in records if r.value == wrong.encode()]
    assert dict(refused.headers)["dlq_code"] == b"unauthenticated"


async def test_repeated_command_id_is_one_event(intake, events, producer, unique):
    for _ in range(3):
        await send(producer, create(unique, command_id=f"dup-{unique}", subject=f"dup {unique}"))
    await events.wait_for(lambda rs: [r for r in rs if f"dup {unique}".encode() in r.value])
    await events.settle(2.0)
    assert len([r for r in events.records if f"dup {unique}".encode() in r.value]) == 1
