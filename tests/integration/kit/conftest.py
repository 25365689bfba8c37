"""The echo service (tests/kit/echo.py) on private topics: the delivery kit as a library,
on the real broker and database."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.db import drop_schemas
from shared.kafka import client_options
from tests.apps import in_process
from tests.kafka_tools import TopicReader, private_topics
from tests.kit.echo import EchoSettings, create_app

PARTITIONS = 6


@pytest.fixture
async def echo_topics(platform):
    """Fresh input and output topics (the events and commands topics of a private prefix)."""
    async with private_topics(platform.kafka_bootstrap_servers, partitions=PARTITIONS) as (_, private):
        yield private.events, private.commands


def echo_env(unique: str, input_topic: str, output_topic: str, **overrides: str) -> dict[str, str]:
    return {
        "ECHO_SCHEMA_NAME": f"kit_{unique}",
        "ECHO_CONSUMER_GROUP": f"kit-{unique}",
        "ECHO_INPUT_TOPIC": input_topic,
        "ECHO_OUTPUT_TOPIC": output_topic,
        **overrides,
    }


def running_echo(env: dict[str, str]):
    """The echo app in this process (its consumers and relay on the real broker)."""
    return in_process(create_app, EchoSettings, env)


async def start_warnings(env: dict[str, str], database_url: str, prefix: str, caplog) -> list[logging.LogRecord]:
    """The warnings starting with `prefix` the service runtime logs while the echo app with
    `env` starts and stops; its schema is dropped afterwards."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shared.service"):
        async with running_echo(env):
            pass
    await drop_schemas(database_url, env["ECHO_SCHEMA_NAME"])
    return [r for r in caplog.records if r.getMessage().startswith(prefix)]


@pytest.fixture
async def echo(platform, echo_topics, unique):
    async with running_echo(echo_env(unique, *echo_topics)) as (app, client):
        yield app, client
    await drop_schemas(platform.database_url, f"kit_{unique}")


@pytest.fixture
async def producer(platform):
    producer = AIOKafkaProducer(
        bootstrap_servers=platform.kafka_bootstrap_servers,
        acks="all",
        max_request_size=5 * 1024 * 1024,
        linger_ms=5,
        **client_options(),
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
