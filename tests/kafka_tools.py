"""Test helpers for reading topics independently of the services under test."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka import client_options, create_topics, topic_partitions
from shared.topics import Topics


class TopicReader:
    """Reads what is appended to a topic after the reader was opened (no consumer group),
    or all of it `from_start`."""

    def __init__(self, bootstrap: str, topic: str, from_start: bool = False) -> None:
        self.topic, self.bootstrap, self.from_start = topic, bootstrap, from_start
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", **client_options()
        )
        self.records: list[ConsumerRecord] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        partitions = await topic_partitions(self.bootstrap, self.topic)
        self.consumer.assign(partitions)
        if self.from_start:
            await self.consumer.seek_to_beginning(*partitions)
        else:
            for tp, offset in (await self.consumer.end_offsets(partitions)).items():
                self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def poll(self, seconds: float = 0.5) -> list[ConsumerRecord]:
        batches = await self.consumer.getmany(timeout_ms=int(seconds * 1000))
        new = [record for batch in batches.values() for record in batch]
        self.records.extend(new)
        return new

    async def wait_for(
        self, predicate: Callable[[list[ConsumerRecord]], bool], timeout: float = 20.0
    ) -> list[ConsumerRecord]:
        deadline = time.monotonic() + timeout
        while not predicate(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {self.topic}; saw {len(self.records)} records")
            await self.poll(0.3)
        return self.records

    async def settle(self, seconds: float = 1.5) -> list[ConsumerRecord]:
        """Keep reading for `seconds` (to show that nothing *more* arrives)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.poll(0.3)
        return self.records

    def with_key(self, key: str) -> list[ConsumerRecord]:
        return [r for r in self.records if r.key == key.encode()]


def kcat(bootstrap: str, *args: str) -> list[str]:
    """A kcat command line for `bootstrap`. On the secured local broker kcat has a listener
    of its own (PLAIN over TLS, KCAT_BOOTSTRAP_SERVERS and KCAT_CONFIG from the environment):
    its librdkafka is too old for Kafka 4's SCRAM."""
    if config := os.environ.get("KCAT_CONFIG"):
        return ["kcat", "-b", os.environ.get("KCAT_BOOTSTRAP_SERVERS", bootstrap), "-F", config, "-q", *args]
    return ["kcat", "-b", bootstrap, *args]


def kcat_read(bootstrap: str, topic: str, partition: int, offset: int) -> str:
    """One record as kcat (an independent C client) sees it: key, headers, value on three lines."""
    result = subprocess.run(
        kcat(
            bootstrap,
            "-C",
            "-t",
            topic,
            "-p",
            str(partition),
            "-o",
            str(offset),
            "-c",
            "1",
            "-e",
            "-f",
            "%k\n%h\n%s\n",
        ),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


@asynccontextmanager
async def private_topics(
    bootstrap: str, prefix: str | None = None, partitions: int = 6
) -> AsyncIterator[tuple[str, Topics]]:
    """Fresh events, commands and dead-letter topics under a unique prefix (services read it
    from LADDER_TOPIC_PREFIX), deleted afterwards."""
    prefix = prefix or f"t-{uuid.uuid4().hex[:10]}."
    topics = Topics.prefixed(prefix)
    await create_topics(bootstrap, topics.all, partitions)
    try:
        yield prefix, topics
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options())
        await admin.start()
        try:
            await admin.delete_topics(list(topics.all))
        finally:
            await admin.close()
