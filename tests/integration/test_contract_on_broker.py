"""The shared contract on the real broker: an enveloped event goes through Kafka (FastStream
publish, FastStream subscriber) with key and headers intact, and kcat sees the same ce_* headers."""

import asyncio
from datetime import UTC, datetime

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage

from shared import envelope as ce
from shared import topics
from shared.emitters import emitter
from shared.kafka import make_broker
from tests.builders import ticket_created
from tests.kafka_tools import TopicReader, kcat_read


def sample(ticket_id: str) -> ce.Envelope:
    event = ticket_created(
        ticket_id,
        datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        intent="export",
        customer_id="c-1",
        subject="Export fails",
    )
    return ce.Envelope(
        event=event,
        id=ce.new_id(),
        source=emitter(event.TYPE),
        time=datetime.now(UTC),
        correlation_id="corr-" + ticket_id,
        causation_id="cause-" + ticket_id,
        cycle=2,
    )


async def test_envelope_survives_the_broker(platform, unique):
    original = sample(f"t-{unique}")
    record = ce.encode(original)
    received: asyncio.Queue = asyncio.Queue()
    broker = make_broker(platform.kafka_bootstrap_servers, client_id="contract-test")
    subscriber = broker.subscriber(
        topics.TICKET_EVENTS,
        group_id=f"contract-{unique}",
        auto_offset_reset="latest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )

    @subscriber
    async def capture(message: KafkaMessage) -> None:
        if message.raw_message.key == record.key:
            received.put_nowait(message.raw_message)

    async with broker:
        await broker.start()
        await asyncio.sleep(2)  # let the group join before publishing with auto_offset_reset=latest
        await broker.publish(
            record.value,
            topics.TICKET_EVENTS,
            key=record.key,
            headers={name: value.decode() for name, value in record.headers},
        )
        raw = await asyncio.wait_for(received.get(), 30)

    assert raw.key == record.key
    assert ce.decode(raw.key, raw.value, raw.headers) == original
    headers = dict(raw.headers)
    for name in (
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_time",
        "ce_specversion",
        "ce_correlationid",
        "ce_causationid",
        "ce_cycle",
    ):
        assert headers[name] == dict(record.headers)[name]


async def test_kcat_sees_the_same_headers(platform, unique):
    original = sample(f"t-{unique}")
    record = ce.encode(original)
    broker = make_broker(platform.kafka_bootstrap_servers, client_id="contract-test")
    async with TopicReader(platform.kafka_bootstrap_servers, topics.TICKET_EVENTS) as reader:
        async with broker:
            await broker.publish(
                record.value,
                topics.TICKET_EVENTS,
                key=record.key,
                headers={name: value.decode() for name, value in record.headers},
            )
        (sent,) = await reader.wait_for(lambda rs: any(r.key == record.key for r in rs))

    key, headers, value = kcat_read(
        platform.kafka_bootstrap_servers, topics.TICKET_EVENTS, sent.partition, sent.offset
    ).split("\n")[:3]
    assert key == original.ticket_id
    seen = dict(item.split("=", 1) for item in headers.split(","))
    assert seen["ce_id"] == original.id
    assert seen["ce_type"] == "ticket.created"
    assert seen["ce_source"] == "ladder/intake"
    assert seen["ce_specversion"] == "1.0"
    assert seen["ce_time"] == ce.format_time(original.time)
    assert value.encode() == record.value
