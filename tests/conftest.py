"""Shared fixtures. Integration tests need the real broker and database (`make test`
starts them); if they are unreachable the run stops at once with one line naming the
variable, instead of skipping."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from shared.settings import LadderSettings, StartupError, load

ROOT = Path(__file__).resolve().parent.parent
# The secured local broker's client environment (deploy/local/kafka-secrets.sh), when the
# scripts made one and the caller did not say otherwise: plain `pytest` after `make up`.
LOCAL_KAFKA_ENV = ROOT / "var" / "secrets" / "kafka-client.env"


def _load_local_kafka_env() -> None:
    if "KAFKA_SECURITY_PROTOCOL" in os.environ or not LOCAL_KAFKA_ENV.is_file():
        return
    for line in LOCAL_KAFKA_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


_load_local_kafka_env()
SESSION_BEGAN = time.time()


def pytest_sessionfinish(session, exitstatus):
    """No configured secret in any log the session wrote (tests/log_secrets.py); a leak fails
    the run, naming the log and where the secret came from."""
    from tests import log_secrets
    from tests.processes import SESSION_LOGS

    secrets = log_secrets.configured_secrets(ROOT / "var" / "secrets", os.environ, log_secrets.suite_api_keys())
    logs = log_secrets.session_logs(ROOT / "var" / "log", SESSION_BEGAN, SESSION_LOGS)
    found = log_secrets.leaks(secrets, logs)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for leak in found:
            reporter.write_line(f"SECRET IN A LOG: {leak}", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config, items):
    # Every test under tests/integration or tests/e2e needs the platform; mark it so.
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def settings() -> LadderSettings:
    return load(LadderSettings)


@pytest.fixture(scope="session")
async def platform(settings):
    """Fail the whole run, loudly, when Kafka or PostgreSQL is not there."""
    from aiokafka.admin import AIOKafkaAdminClient

    from shared import topics
    from shared.db import create_pool
    from shared.kafka import client_options

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=5000, **client_options(settings)
    )
    try:
        await asyncio.wait_for(admin.start(), 15)
        existing = set(await admin.list_topics())
    except Exception as error:
        pytest.exit(
            f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}: Kafka broker unreachable "
            f"({type(error).__name__}); run `make up` or `make test`",
            returncode=3,
        )
    finally:
        await admin.close()
    missing = set(topics.ALL) - existing
    if missing:
        pytest.exit(
            f"topics missing on {settings.kafka_bootstrap_servers}: {sorted(missing)}; run `make up`", returncode=3
        )
    try:
        pool = await create_pool(settings.database_url, timeout=10)
    except StartupError as error:
        pytest.exit(str(error), returncode=3)
    SESSION_START.update(
        await _end_offsets(settings.kafka_bootstrap_servers, (topics.TICKET_EVENTS, topics.DEAD_LETTER))
    )
    yield settings
    await pool.close()
    from shared.db import drop_schemas
    from tests.apps import SESSION_SCHEMAS

    await drop_schemas(settings.database_url, *SESSION_SCHEMAS)


# Where the shared topics ended when the session began: what the tests wrote lies beyond.
SESSION_START: dict = {}


async def _end_offsets(bootstrap: str, names) -> dict:
    from aiokafka import AIOKafkaConsumer

    from shared.kafka import client_options, topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options())
    await consumer.start()
    try:
        partitions = [tp for name in names for tp in await topic_partitions(bootstrap, name)]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


os.environ.setdefault("LOG_LEVEL", "WARNING")
