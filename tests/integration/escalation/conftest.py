"""escalation on the real broker and database, on topics of its own.

Each run gets fresh topics (`LADDER_TOPIC_PREFIX`), its own escalation schema and consumer
group. intake runs in-process and takes the help desk's commands over its real HTTP API;
router is not part of these tests, so the tests publish the `ticket.routed` events router
would, stamped with escalation's injected clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.escalation.main import create_app as create_escalation
from services.escalation.settings import EscalationSettings
from services.intake.main import create_app as create_intake
from services.intake.settings import IntakeSettings
from shared import envelope as ce
from shared.db import drop_schemas
from shared.events import RoutingReason, TicketRouted, Tier
from shared.kafka import client_options
from shared.topics import TICKET_EVENTS, Topics
from tests.apps import in_process
from tests.integration.intake.conftest import HELPDESK, intake_env
from tests.kafka_tools import TopicReader, private_topics

CHARTERS = Path(__file__).resolve().parents[2] / "charters"
PARTITIONS = 6


def prefix(topics: Topics) -> str:
    return topics.events.removesuffix(TICKET_EVENTS)


def escalation_env(topics: Topics, unique: str, charter: str, **overrides: str) -> dict[str, str]:
    return {
        "LADDER_TOPIC_PREFIX": prefix(topics),
        "LADDER_CHARTER": str(CHARTERS / charter),
        "ESCALATION_SCHEMA_NAME": f"escalation_{unique}",
        "ESCALATION_CONSUMER_GROUP": f"escalation-{unique}",
        **overrides,
    }


class Clock:
    """escalation's clock in these tests: the wall clock plus however far a test moved it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@dataclass
class Escalation:
    app: Any
    client: httpx.AsyncClient
    clock: Clock
    schema: str

    async def advance(self, by: timedelta) -> None:
        """Move escalation's clock and have its timer loop look at once."""
        self.clock.advance(by)
        self.app.state.timers.wake()

    async def timers(self, ticket: str, **expected: str) -> None:
        """Wait until the ticket's timers are in the `expected` states (by kind), i.e. until
        escalation has consumed what the test sent before moving its clock."""
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            async with self.app.state.runtime.pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT kind, state FROM {self.schema}.sla_timers WHERE ticket_id = $1 "
                    "ORDER BY state = 'pending', due_at",
                    ticket,
                )
            states = {row["kind"]: row["state"] for row in rows}  # the latest visit's, pending ones above all
            if all(states.get(kind) == state for kind, state in expected.items()):
                return
            assert asyncio.get_running_loop().time() < deadline, f"timers of {ticket}: {states}"
            await asyncio.sleep(0.1)


@pytest.fixture(scope="package")
async def ladder(platform) -> AsyncIterator[Topics]:
    async with private_topics(platform.kafka_bootstrap_servers) as (_, topics):
        yield topics


@pytest.fixture(scope="package")
async def intake(platform, ladder) -> AsyncIterator[httpx.AsyncClient]:
    env = intake_env(LADDER_TOPIC_PREFIX=prefix(ladder))
    async with in_process(create_intake, IntakeSettings, env) as (_, client):
        yield client


@pytest.fixture(scope="package")
async def escalation(platform, ladder) -> AsyncIterator[Escalation]:
    unique = uuid.uuid4().hex[:10]
    env = escalation_env(ladder, unique, "escalation-24x7.yaml", ESCALATION_CONSUMERS="1", ESCALATION_TIMER_POLL_S="1")
    clock = Clock()
    try:
        async with in_process(create_escalation, EscalationSettings, env, clock=clock) as (app, client):
            yield Escalation(app, client, clock, f"escalation_{unique}")
    finally:
        await drop_schemas(platform.database_url, f"escalation_{unique}")


@pytest.fixture(scope="package")
async def producer(platform) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", linger_ms=5, **client_options()
    )
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def events(platform, ladder) -> AsyncIterator[TopicReader]:
    async with TopicReader(platform.kafka_bootstrap_servers, ladder.events) as reader:
        yield reader


@pytest.fixture
async def desk(intake, escalation, producer, events, ladder) -> Desk:
    return Desk(intake, escalation, producer, events, ladder.events)


@dataclass
class Desk:
    """The help desk (intake's HTTP API) and router (publishing ticket.routed) around escalation."""

    intake: httpx.AsyncClient
    escalation: Escalation
    producer: AIOKafkaProducer
    events: TopicReader
    topic: str

    async def create(self, **changes: Any) -> str:
        body = {
            "customer_id": "acme",
            "channel": "email",
            "subject": "SSO login fails",
            "intent": "login",
            "priority": "P2",
            **changes,
        }
        response = await self.intake.post("/v1/tickets", json=body, headers=HELPDESK)
        assert response.status_code == 201, response.text
        ticket = response.json()["ticket_id"]
        await self.events.wait_for(lambda rs: bool(self.events.with_key(ticket)))
        return ticket

    async def route(self, ticket: str, tier: Tier, reason: RoutingReason = RoutingReason.RULE, **fields: Any) -> str:
        """What router would publish (after the event it answers, so in stream order)."""
        created = next(e for e in map(self.decode, self.events.with_key(ticket)) if e.type == "ticket.created")
        event = TicketRouted(ticket_id=ticket, tier=tier, queue=f"{tier.value.lower()}-queue", reason=reason, **fields)
        envelope = ce.Envelope(
            event=event,
            id=ce.new_id(),
            source="ladder/router",
            time=self.escalation.clock(),
            correlation_id=created.correlation_id,
            causation_id=created.id,
        )
        record = ce.encode(envelope)
        await self.producer.send_and_wait(self.topic, record.value, key=record.key, headers=record.headers)
        return envelope.id

    async def post(self, ticket: str, path: str, body: dict[str, Any]) -> str:
        response = await self.intake.post(f"/v1/tickets/{ticket}/{path}", json=body, headers=HELPDESK)
        assert response.status_code == 202, response.text
        return response.json()["event_id"]

    async def answers(self, ticket: str, count: int, timeout: float = 20.0) -> list[ce.Envelope]:
        """escalation's events about `ticket`, once there are at least `count`."""
        await self.events.wait_for(lambda rs: len(self.escalations(ticket)) >= count, timeout=timeout)
        return self.escalations(ticket)

    def escalations(self, ticket: str) -> list[ce.Envelope]:
        return [e for e in map(self.decode, self.events.with_key(ticket)) if e.source == "ladder/escalation"]

    @staticmethod
    def decode(record: Any) -> ce.Envelope:
        return ce.decode(record.key, record.value, record.headers)


COMPLETE = {
    "impact": "one customer cannot log in",
    "steps_attempted": ["reset the password", "cleared cookies"],
    "attachments": ["req-8f3a", "screenshot-1.png"],
    "problem_statement": "SSO login fails with a 500",
}


def handoff(
    source: str,
    target: str,
    *,
    checklist: dict[str, Any] | None = None,
    hypothesis: str | None = "the IdP certificate was rotated",
) -> dict[str, Any]:
    return {
        "from_tier": source,
        "to_tier": target,
        "agent_id": "ana",
        "checklist": COMPLETE if checklist is None else checklist,
        "hypothesis": hypothesis,
    }
