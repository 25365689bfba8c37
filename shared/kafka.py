"""Kafka helpers every service uses: the broker factory and the start-up check.

Producers are idempotent with `acks=all`: a retried send never duplicates or reorders
records within a partition. How consumers commit, retry and dead-letter is the delivery
kit's business (`shared.delivery`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from shared.settings import StartupError
from shared.topics import retention_ms


def make_broker(
    bootstrap_servers: str, *, client_id: str, middlewares: Sequence[Any] = (), **options: Any
) -> KafkaBroker:
    return KafkaBroker(
        # a list: FastStream would hand a comma-separated string to aiokafka as one host name
        bootstrap_servers.split(","),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,  # topics are provisioned with their partition count
        middlewares=middlewares,
        graceful_timeout=10.0,  # a batch in hand finishes; shutdown stays within 25 s
        logger=logging.getLogger(f"ladder.kafka.{client_id}"),  # through the JSON formatter
        **options,
    )


async def start_broker(broker: KafkaBroker, bootstrap_servers: str, timeout: float) -> None:
    """Connect, or raise `StartupError` naming KAFKA_BOOTSTRAP_SERVERS."""
    try:
        await asyncio.wait_for(broker.connect(), timeout)
        if not await broker.ping(timeout):
            raise TimeoutError(f"no metadata answer within {timeout:g}s")
    except (TimeoutError, OSError, KafkaError) as error:
        reason = str(error) or type(error).__name__
        raise StartupError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}: Kafka broker unreachable ({reason})"
        ) from None


async def check_kafka(bootstrap_servers: str, timeout: float) -> None:
    """A metadata round trip, or `StartupError` naming KAFKA_BOOTSTRAP_SERVERS."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="ladder-preflight", request_timeout_ms=int(timeout * 1000)
    )
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # the one line below says it all
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.describe_cluster(), timeout)
    except (TimeoutError, OSError, KafkaError) as error:
        reason = str(error) or type(error).__name__
        raise StartupError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}: Kafka broker unreachable ({reason})"
        ) from None
    finally:
        await admin.close()
        client_log.setLevel(level)


async def preflight(bootstrap_servers: str, database_url: str, timeout: float) -> None:
    """Fail fast, before serving, with one line naming the variable that points nowhere."""
    from shared.db import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=1, timeout=timeout)
    await pool.close()
    await check_kafka(bootstrap_servers, timeout)


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        TopicPartition(topic, p["partition"]) for p in sorted(description["partitions"], key=lambda p: p["partition"])
    ]


async def create_topics(
    bootstrap_servers: str, names: Sequence[str], partitions: int = 6, timeout: float = 30.0, replication: int = 1
) -> None:
    """Create `names` and wait until every partition has a leader: a client that starts on a
    topic whose partitions have none yet can wait minutes for its next metadata refresh."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([new_topic(name, partitions, replication) for name in names])
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            described = await admin.describe_topics(list(names))
            if all(
                topic["error_code"] == 0
                and len(topic["partitions"]) == partitions
                and all(p["leader"] >= 0 for p in topic["partitions"])
                for topic in described
            ):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"topics {list(names)} have no leaders after {timeout:g}s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def new_topic(name: str, partitions: int, replication: int = 1) -> NewTopic:
    """A topic of the design with its retention (shared.topics.RETENTION_MS); others as the broker says."""
    retention = retention_ms(name)
    configs = {} if retention is None else {"retention.ms": str(retention)}
    return NewTopic(name, partitions, replication, topic_configs=configs)


async def commit_group_at_end(bootstrap_servers: str, group_id: str, topic: str) -> None:
    """Commit `topic`'s end offsets for `group_id`: a new group then starts at the tail
    instead of the beginning (for tools and tests; services keep `earliest`)."""
    partitions = await topic_partitions(bootstrap_servers, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
