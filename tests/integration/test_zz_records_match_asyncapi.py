"""Every record intake wrote during this test session validates against its message in the
committed AsyncAPI document (runs last: `zz`). Events by `ce_type`; dead letters by their
dlq_* headers."""

import json

import jsonschema_rs
from aiokafka import AIOKafkaConsumer

from cli.contracts import DOCS
from shared import topics
from shared.kafka import client_options
from tests.conftest import SESSION_START

DOCUMENT = json.loads((DOCS / "asyncapi" / "ladder.json").read_text())


def validator(schema):
    return jsonschema_rs.validator_for({"components": DOCUMENT["components"], **schema})


async def written_since_start(bootstrap):
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options())
    await consumer.start()
    try:
        consumer.assign(list(SESSION_START))
        for tp, offset in SESSION_START.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(list(SESSION_START))
        records = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                return records
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                records += batch
    finally:
        await consumer.stop()


async def test_intake_records_match_the_asyncapi_document(platform):
    messages = {m["name"]: m for m in DOCUMENT["components"]["messages"].values()}
    records = await written_since_start(platform.kafka_bootstrap_servers)
    checked = {"events": 0, "dead letters": 0}
    problems = []
    for record in records:
        headers = {name: (value or b"").decode(errors="replace") for name, value in record.headers}
        if record.topic == topics.TICKET_EVENTS and headers.get("ce_source") == "ladder/intake":
            message = messages[headers["ce_type"]]
            payload = json.loads(record.value)
            checked["events"] += 1
        elif headers.get("dlq_service") == "intake":
            message, payload = messages["dead_letter"], None
            checked["dead letters"] += 1
        else:
            continue
        for what, instance, schema in (
            ("headers", headers, message["headers"]),
            ("payload", payload, message["payload"]),
        ):
            if instance is not None:
                problems += [
                    f"{record.topic}/{record.partition}/{record.offset} {what}: {error.message}"
                    for error in validator(schema).iter_errors(instance)
                ]
    assert checked["events"] and checked["dead letters"], checked  # the session did write some
    assert not problems, problems[:10]
