"""Order across partitions on the real broker: a topic client cannot know when intake reads
each partition. Follow-ups read before their ticket's create (keyed by the ticket, while the
create was keyed otherwise) wait for it and then take effect in the order they were written;
nothing is dead-lettered, and none of it is remembered as a rejection."""

import asyncio

import orjson
from aiokafka import AIOKafkaProducer

from services.intake.core.commands import CreateTicketRequest
from services.intake.core.tickets import new_ticket_id
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from shared.kafka import client_options
from tests.apps import in_process
from tests.integration.intake.conftest import intake_env, signed, ticket_body
from tests.kafka_tools import TopicReader, private_topics


async def waited(client) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("support_intake_commands_waited_total "):
            return float(line.split()[1])
    return 0.0


async def test_follow_ups_read_before_the_create_wait_and_keep_their_order(platform, unique):
    bootstrap = platform.kafka_bootstrap_servers
    body = ticket_body(unique, external_id=f"zd-{unique}")
    ticket = new_ticket_id("helpdesk", CreateTicketRequest(**body), "unused: the external id names it")
    follow_ups = [
        {"type": "record_response", "ticket_id": ticket, "tier": "L1", "agent_id": "ann", "command_id": f"r-{unique}"},
        {"type": "resolve_ticket", "ticket_id": ticket, "tier": "L1", "agent_id": "ann", "resolution_code": "ok"},
        {"type": "rate_ticket", "ticket_id": ticket, "score": 4},
    ]
    async with private_topics(bootstrap) as (prefix, topics):
        env = intake_env(LADDER_TOPIC_PREFIX=prefix, INTAKE_UNKNOWN_TICKET_WAIT_S="120")
        async with (
            in_process(create_app, IntakeSettings, env) as (_, client),
            TopicReader(bootstrap, topics.events) as events,
            TopicReader(bootstrap, topics.dead_letter) as dead,
        ):
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client_options())
            await producer.start()
            try:
                for command in follow_ups:  # keyed by the ticket: one partition, in this order
                    value = orjson.dumps(command)
                    await producer.send_and_wait(
                        topics.commands, value, key=ticket.encode(), headers=signed(ticket.encode(), value)
                    )
                for _ in range(300):  # until intake has read all three (and parked them)
                    if await waited(client) >= 3:
                        break
                    await asyncio.sleep(0.1)
                assert await waited(client) >= 3
                create = orjson.dumps({"type": "create_ticket", **body})
                key = f"other-{unique}".encode()  # keyed otherwise: another partition, most likely
                await producer.send_and_wait(topics.commands, create, key=key, headers=signed(key, create))
            finally:
                await producer.stop()
            records = await events.wait_for(lambda rs: len([r for r in rs if r.key == ticket.encode()]) >= 4)
            assert [dict(r.headers)["ce_type"] for r in records if r.key == ticket.encode()] == [
                b"ticket.created",
                b"ticket.responded",
                b"ticket.resolved",
                b"ticket.rated",
            ]
            await dead.settle(1.0)
            assert dead.records == []
