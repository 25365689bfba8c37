"""Kafka helpers every service uses: the broker factory and the start-up check.

Every Kafka client (services, relay, admin, CLI, simulator, benches, tests) takes its
transport and login from `client_options` (the environment's `KafkaSecurity` unless given
one), so one set of variables secures them all.

Producers are idempotent with `acks=all`: a retried send never duplicates or reorders
records within a partition. How consumers commit, retry and dead-letter is the delivery
kit's business (`shared.delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import KafkaSecurity, StartupError, load
from shared.topics import retention_ms

_FASTSTREAM_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def client_options(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments (producer, consumer, admin) for `security`, read from the
    environment when not given (raises `ConfigError` naming the variable). TLS verifies the
    broker's certificate and host name (aiokafka's `create_ssl_context` always does)."""
    security = security if security is not None else load(KafkaSecurity)
    if security.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": security.kafka_security_protocol}
    if security.kafka_tls:
        options["ssl_context"] = create_ssl_context(
            cafile=security.kafka_ssl_ca_file,
            certfile=security.kafka_ssl_cert_file,
            keyfile=security.kafka_ssl_key_file,
        )
    if security.kafka_sasl:
        assert security.kafka_sasl_password is not None  # KafkaSecurity's rules
        options |= {
            "sasl_mechanism": security.kafka_sasl_mechanism,
            "sasl_plain_username": security.kafka_sasl_username,
            "sasl_plain_password": security.kafka_sasl_password.get_secret_value(),
        }
    return options


def broker_security(security: KafkaSecurity | None = None) -> BaseSecurity | None:
    """The same options in FastStream's terms (its KafkaBroker takes a `security` object)."""
    options = client_options(security)
    if not options:
        return None
    tls = options["security_protocol"] in {"SSL", "SASL_SSL"}
    if "sasl_mechanism" not in options:
        return BaseSecurity(ssl_context=options.get("ssl_context"), use_ssl=tls)
    return _FASTSTREAM_SASL[options["sasl_mechanism"]](
        options["sasl_plain_username"],
        options["sasl_plain_password"],
        ssl_context=options.get("ssl_context"),
        use_ssl=tls,
    )


def make_broker(
    bootstrap_servers: str,
    *,
    client_id: str,
    middlewares: Sequence[Any] = (),
    security: KafkaSecurity | None = None,
    **options: Any,
) -> KafkaBroker:
    return KafkaBroker(
        # a list: FastStream would hand a comma-separated string to aiokafka as one host name
        bootstrap_servers.split(","),
        security=broker_security(security),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,  # topics are provisioned with their partition count
        middlewares=middlewares,
        graceful_timeout=10.0,  # a batch in hand finishes; shutdown stays within 25 s
        logger=logging.getLogger(f"ladder.kafka.{client_id}"),  # through the JSON formatter
        **options,
    )


class _ConnectFailures(logging.Handler):
    """Keeps the cause aiokafka logs for a failed connection (refused login, untrusted
    certificate, a TLS listener spoken to in plaintext): its exception says only
    "Unable to bootstrap". The cause names neither the password nor the user."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Unable connect to"):
            self.last = message.partition(": ")[2] or message


@contextlib.contextmanager
def _one_line_on_failure(bootstrap_servers: str, security: KafkaSecurity | None) -> Iterator[None]:
    """Raise `StartupError` in one line naming the variables and the cause, with aiokafka's
    own error lines held back (the one line says it all)."""
    security = security if security is not None else load(KafkaSecurity)
    client_log = logging.getLogger("aiokafka")
    failures, level, propagate = _ConnectFailures(), client_log.level, client_log.propagate
    client_log.addHandler(failures)
    client_log.setLevel(logging.ERROR)
    client_log.propagate = False
    try:
        yield
    except (TimeoutError, OSError, KafkaError) as error:
        reason = failures.last or str(error) or type(error).__name__
        if reason.endswith("closed") and not security.kafka_tls:
            reason += "; does the listener expect TLS?"
        login = f", user {security.kafka_sasl_username}" if security.kafka_sasl else ""
        raise StartupError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers} (KAFKA_SECURITY_PROTOCOL="
            f"{security.kafka_security_protocol}{login}): Kafka broker unreachable or refused the client ({reason})"
        ) from None
    finally:
        client_log.removeHandler(failures)
        client_log.setLevel(level)
        client_log.propagate = propagate


async def start_broker(
    broker: KafkaBroker, bootstrap_servers: str, timeout: float, security: KafkaSecurity | None = None
) -> None:
    """Connect, or raise `StartupError` naming KAFKA_BOOTSTRAP_SERVERS and the cause."""
    with _one_line_on_failure(bootstrap_servers, security):
        await asyncio.wait_for(broker.connect(), timeout)
        if not await broker.ping(timeout):
            raise TimeoutError(f"no metadata answer within {timeout:g}s")


async def check_kafka(bootstrap_servers: str, timeout: float, security: KafkaSecurity | None = None) -> None:
    """A metadata round trip, or `StartupError` naming KAFKA_BOOTSTRAP_SERVERS."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="ladder-preflight",
        request_timeout_ms=int(timeout * 1000),
        **client_options(security),
    )
    try:
        with _one_line_on_failure(bootstrap_servers, security):
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        await admin.close()


async def preflight(
    bootstrap_servers: str, database_url: str, timeout: float, security: KafkaSecurity | None = None
) -> None:
    """Fail fast, before serving, with one line naming the variable that points nowhere."""
    from shared.db import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=1, timeout=timeout)
    await pool.close()
    await check_kafka(bootstrap_servers, timeout, security)


async def topic_partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options())
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
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options())
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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False, **client_options()
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
