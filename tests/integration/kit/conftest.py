"""The echo service (tests/kit/echo.py) on private topics: the delivery kit as a library,
on the real broker and database."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared import topics
from tests.kafka_tools import TopicReader
from tests.kit.echo import EchoSettings, create_app

PARTITIONS = 6


@pytest.fixture
async def echo_topics(platform, unique):
    """Fresh input and output topics (6 partitions each), deleted afterwards."""
    names = (f"kit-in-{unique}", f"kit-out-{unique}")
    admin = AIOKafkaAdminClient(bootstrap_servers=platform.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
        yield names
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


def echo_env(unique: str, input_topic: str, output_topic: str, **overrides: str) -> dict[str, str]:
    return {
        "ECHO_SCHEMA_NAME": f"kit_{unique}",
        "ECHO_CONSUMER_GROUP": f"kit-{unique}",
        "ECHO_INPUT_TOPIC": input_topic,
        "ECHO_OUTPUT_TOPIC": output_topic,
        **overrides,
    }


@asynccontextmanager
async def running_echo(env: dict[str, str]):
    """The echo app in this process (its consumers and relay on the real broker)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app(EchoSettings())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://echo") as client,
    ):
        yield app, client


@pytest.fixture
async def echo(platform, echo_topics, unique):
    async with running_echo(echo_env(unique, *echo_topics)) as (app, client):
        yield app, client
    await drop_schema(platform.database_url, f"kit_{unique}")


async def drop_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def producer(platform):
    producer = AIOKafkaProducer(
        bootstrap_servers=platform.kafka_bootstrap_servers, acks="all", max_request_size=5 * 1024 * 1024, linger_ms=5
    )
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def outputs(platform, echo_topics):
    async with TopicReader(platform.kafka_bootstrap_servers, echo_topics[1]) as reader:
        yield reader


@pytest.fixture
async def dead_letters(platform):
    async with TopicReader(platform.kafka_bootstrap_servers, topics.DEAD_LETTER) as reader:
        yield reader
