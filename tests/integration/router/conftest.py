"""router (and intake, its upstream) on the real broker and database, isolated per module:
fresh prefixed topics (LADDER_TOPIC_PREFIX), a private router schema, own consumer groups."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from services.intake.main import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.router.main import create_app as create_router
from services.router.settings import RouterSettings
from shared import envelope as ce
from shared.db import drop_schemas
from shared.emitters import emitter
from shared.envelope import Envelope
from shared.events import Event
from shared.kafka import client_options
from shared.topics import Topics
from tests.apps import in_process
from tests.integration.intake.conftest import HELPDESK, intake_env
from tests.kafka_tools import TopicReader, private_topics

PARTITIONS = 6
ROUTED = b"ticket.routed"


class Clock:
    """The router's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def router_env(prefix: str, schema: str, charter: Path | None = None, **overrides: str) -> dict[str, str]:
    env = {
        "LADDER_TOPIC_PREFIX": prefix,
        "ROUTER_SCHEMA_NAME": schema,
        "ROUTER_CONSUMER_GROUP": f"router-{schema}",
        "ROUTER_ASSIGN_INTERVAL_S": "0.3",
        **overrides,
    }
    if charter is not None:
        env["LADDER_CHARTER"] = str(charter)
    return env


class Stack:
    """intake and router in this process on private topics; the events topic read independently."""

    def __init__(
        self,
        topics: Topics,
        events: TopicReader,
        intake: httpx.AsyncClient,
        router: httpx.AsyncClient,
        producer: AIOKafkaProducer,
        clock: Clock,
        schema: str,
    ) -> None:
        self.topics, self.events, self.intake, self.router = topics, events, intake, router
        self.producer, self.clock, self.schema = producer, clock, schema
        self.correlation: dict[str, str] = {}

    async def create(self, **body) -> str:
        response = await self.intake.post(
            "/v1/tickets",
            headers=HELPDESK,
            json={"customer_id": "acme", "channel": "email", "subject": "help", "intent": "login", **body},
        )
        assert response.status_code == 201, response.text
        accepted = response.json()
        self.correlation[accepted["ticket_id"]] = accepted["event_id"]
        return accepted["ticket_id"]

    async def command(self, ticket_id: str, path: str, body: dict) -> None:
        response = await self.intake.post(f"/v1/tickets/{ticket_id}/{path}", headers=HELPDESK, json=body)
        assert response.status_code in (201, 202), response.text

    async def publish(self, event: Event, event_id: str | None = None, source: str | None = None) -> None:
        """As its emitter would (or as `source`, forging it): an event on the events topic,
        caused by the ticket's history."""
        record = ce.encode(
            Envelope(
                event=event,
                id=event_id or ce.new_id(),
                source=source or emitter(event.TYPE),
                time=self.clock(),
                correlation_id=self.correlation[event.ticket_id],
            )
        )
        await self.producer.send_and_wait(self.topics.events, record.value, key=record.key, headers=record.headers)

    def routed(self, ticket_id: str) -> list[Envelope]:
        return [
            ce.decode(r.key, r.value, r.headers)
            for r in self.events.with_key(ticket_id)
            if dict(r.headers).get("ce_type") == ROUTED
        ]

    async def wait_routed(self, ticket_id: str, count: int = 1, timeout: float = 20) -> list[Envelope]:
        await self.events.wait_for(lambda _: len(self.routed(ticket_id)) >= count, timeout)
        return self.routed(ticket_id)


@asynccontextmanager
async def stack(platform, charter: Path | None, clock: Clock):
    async with private_topics(platform.kafka_bootstrap_servers) as (prefix, topics):
        schema = f"router_{uuid.uuid4().hex[:10]}"
        env = {**intake_env(), **router_env(prefix, schema, charter)}
        producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", **client_options())
        await producer.start()
        try:
            async with (
                TopicReader(platform.kafka_bootstrap_servers, topics.events) as events,
                in_process(create_intake, IntakeSettings, env) as (_, intake),
                in_process(create_router, RouterSettings, env, clock=clock) as (_, router),
            ):
                yield Stack(topics, events, intake, router, producer, clock, schema)
        finally:
            await producer.stop()
            await drop_schemas(platform.database_url, schema)


def summary(envelope: Envelope) -> tuple:
    e = envelope.event
    return (
        e.tier.value,
        e.queue,
        e.assignee,
        e.reason.value,
        e.communication_owner.value if e.communication_owner else None,
    )
