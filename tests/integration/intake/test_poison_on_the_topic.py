"""Issue 6, defects 1 and 2 on the real broker: records nobody designed for, mixed with
thousands of valid commands on every partition. Every valid command becomes exactly one
event, every bad record exactly one dead letter with its reason, and intake keeps going."""

import orjson

from shared import topics
from tests.integration.intake.conftest import HELPDESK, signed

LOCK_NAMES = ["ladder.intake.relay", "relay:intake", "migrate:intake", "intake:ticket", "intake:command"]


def create(marker):
    return {
        "type": "create_ticket",
        "command_id": marker,
        "customer_id": "c",
        "channel": "chat",
        "subject": marker,
        "intent": "crash",
        "priority": "P2",
    }


def dlq(record, name):
    return dict(record.headers)[name].decode()


async def test_odd_records_among_thousands_of_valid_commands(intake, events, dead_letters, platform, unique):
    from aiokafka import AIOKafkaProducer

    from shared.kafka import client_options

    producer = AIOKafkaProducer(
        bootstrap_servers=platform.kafka_bootstrap_servers,
        acks="all",
        linger_ms=5,
        max_request_size=5 * 1024 * 1024,
        **client_options(),
    )
    await producer.start()
    try:
        sent, valid = [], []

        async def send(value, extra=(), key=b"k", sign=True):
            headers = [*(signed(key, value) if sign else []), *extra]
            sent.append(await producer.send(topics.TICKET_COMMANDS, value, key=key, headers=headers))
            return headers

        for i in range(2000):
            marker = f"poison-mix-{unique}-{i}"
            valid.append(marker)
            await send(orjson.dumps(create(marker)), key=str(i).encode())
            if i == 1000:  # the defect: one null header value lost its batch-mates
                await send(orjson.dumps(create(f"{marker}-null")), [("trace", None)])
                valid.append(f"{marker}-null")
        for label, extra in [("nul", ("x\x00y", b"1")), ("binary", ("bin", b"\xff\xfe"))]:
            marker = f"poison-mix-{unique}-{label}"
            valid.append(marker)
            await send(orjson.dumps(create(marker)), [extra])
        bad = [
            (orjson.dumps(create(f"bad-{unique}-1")), [("ladder_signature", None)], b"k", "unauthenticated", False),
            (b"\x00\xff", [("a\x00b", b"\xff")], b"k", "not_json", True),
            (orjson.dumps(create(f"bad-{unique}-2")), [], b"k" * 2_000_000, "too_large", True),
            *[
                (
                    orjson.dumps({"type": "record_response", "ticket_id": name, "tier": "L1", "agent_id": "a"}),
                    [],
                    name.encode(),
                    "unknown_ticket",
                    True,
                )
                for name in LOCK_NAMES
            ],
        ]
        first_bad = len(sent)
        written = [await send(value, extra, key, sign) for value, extra, key, _, sign in bad]
        await producer.flush()
        metas = [await future for future in sent]
    finally:
        await producer.stop()
    assert len({meta.partition for meta in metas}) == 6

    wanted = {marker.encode() for marker in valid}

    def subjects(records):
        return [
            orjson.loads(r.value)["subject"].encode()
            for r in records
            if dict(r.headers).get("ce_type") == b"ticket.created"
            and orjson.loads(r.value)["subject"].startswith(f"poison-mix-{unique}")
        ]

    await events.wait_for(lambda rs: wanted <= set(subjects(rs)), timeout=120)
    positions = {(meta.partition, meta.offset) for meta in metas[first_bad:]}

    def mine(records):
        return [
            r
            for r in records
            if dlq(r, "dlq_source_topic") == topics.TICKET_COMMANDS
            and (int(dlq(r, "dlq_source_partition")), int(dlq(r, "dlq_source_offset"))) in positions
        ]

    await dead_letters.wait_for(lambda rs: len(mine(rs)) >= len(bad), timeout=60)
    await events.settle(2.0)
    await dead_letters.settle(0.5)

    assert sorted(subjects(events.records)) == sorted(wanted)  # each exactly once
    dead = {
        (int(dlq(r, "dlq_source_partition")), int(dlq(r, "dlq_source_offset"))): r for r in mine(dead_letters.records)
    }
    assert len(mine(dead_letters.records)) == len(bad)
    for meta, (value, _, key, code, _), headers in zip(metas[first_bad:], bad, written, strict=True):
        record = dead[(meta.partition, meta.offset)]
        assert dlq(record, "dlq_code") == code
        assert record.key == key and record.value == value  # verbatim, the 2 MB key too
        assert [h for h in record.headers if not h[0].startswith("dlq_")] == [
            h
            for h in headers
            if h[0] != "ladder_signature"  # a credential: never in a dead letter
        ]


async def test_ticket_ids_that_look_like_internal_lock_names_are_just_ids(intake, unique):
    """A request about such an id answers at once (404: no such ticket) and holds nobody up."""
    import asyncio

    from tests.integration.intake.conftest import ticket_body

    async def respond(ticket):
        return await intake.post(
            f"/v1/tickets/{ticket}/responses", json={"tier": "L1", "agent_id": "a"}, headers=HELPDESK
        )

    async def create(i):
        return await intake.post("/v1/tickets", json=ticket_body(f"{unique}-{i}"), headers=HELPDESK)

    answers = await asyncio.wait_for(
        asyncio.gather(*(respond(name) for name in LOCK_NAMES), *(create(i) for i in range(20))), timeout=10
    )
    assert [a.status_code for a in answers[: len(LOCK_NAMES)]] == [404] * len(LOCK_NAMES)
    assert {a.json()["error"] for a in answers[: len(LOCK_NAMES)]} == {"unknown_ticket"}
    assert {a.status_code for a in answers[len(LOCK_NAMES) :]} == {201}
