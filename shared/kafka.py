"""Kafka helpers every service uses: the broker factory, the start-up check and retries.

Delivery invariants (DESIGN section 5):
1. Producers are idempotent with `acks=all`: a retried send never duplicates or reorders
   records within a partition.
2. Consumers use `AckPolicy.NACK_ON_ERROR` with auto-commit off: the offset is committed
   only after the handler returned, i.e. after its effects are durable. A handler must
   therefore turn *poison* input into a dead-letter record and return normally; only
   *transient* failures (database or broker unavailable) may raise.
3. A raising handler is re-delivered by FastStream at once (it seeks back); `retrying`
   puts an exponential pause in front of that, so an outage is no hot loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared.settings import StartupError

log = logging.getLogger(__name__)

CONSUMER_ACK_POLICY = AckPolicy.NACK_ON_ERROR
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, KafkaError, asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError, asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)

T = TypeVar("T")


def make_broker(bootstrap_servers: str, *, client_id: str, middlewares: Sequence[Any] = (), **options: Any) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,  # topics are provisioned with their partition count
        middlewares=middlewares,
        graceful_timeout=15.0,
        logger=logging.getLogger(f"ladder.kafka.{client_id}"),  # through the JSON formatter
        **options,
    )


async def start_broker(broker: KafkaBroker, bootstrap_servers: str, timeout: float) -> None:
    """Connect, or raise `StartupError` naming KAFKA_BOOTSTRAP_SERVERS."""
    try:
        await asyncio.wait_for(broker.connect(), timeout)
        if not await broker.ping(timeout):
            raise TimeoutError(f"no metadata answer within {timeout:g}s")
    except (OSError, asyncio.TimeoutError, KafkaError) as error:
        reason = str(error) or type(error).__name__
        raise StartupError(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}: Kafka broker unreachable ({reason})") from None


async def check_kafka(bootstrap_servers: str, timeout: float) -> None:
    """A metadata round trip, or `StartupError` naming KAFKA_BOOTSTRAP_SERVERS."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="ladder-preflight",
                                request_timeout_ms=int(timeout * 1000))
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # the one line below says it all
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.describe_cluster(), timeout)
    except (OSError, asyncio.TimeoutError, KafkaError) as error:
        reason = str(error) or type(error).__name__
        raise StartupError(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}: Kafka broker unreachable ({reason})") from None
    finally:
        await admin.close()
        client_log.setLevel(level)


async def preflight(bootstrap_servers: str, database_url: str, timeout: float) -> None:
    """Fail fast, before serving, with one line naming the variable that points nowhere."""
    from shared.db import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=1, timeout=timeout)
    await pool.close()
    await check_kafka(bootstrap_servers, timeout)


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 6,
    first_pause: float = 0.2,
    max_pause: float = 5.0,
) -> T:
    """Run `operation`, retrying transient errors with exponential pauses; re-raise the last one."""
    pause = first_pause
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except TRANSIENT_ERRORS as error:
            if attempt == attempts:
                raise
            log.warning("transient failure, retrying", extra={"operation": what, "attempt": attempt,
                                                               "error": type(error).__name__, "pause_s": pause})
            await asyncio.sleep(pause)
            pause = min(pause * 2, max_pause)
    raise AssertionError("unreachable")


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in sorted(description["partitions"], key=lambda p: p["partition"])]


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
