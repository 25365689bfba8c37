"""The secured local broker (deploy/local/kafka.sh): a client without credentials or with a
wrong password is refused and the service says why in one line; each service principal is
refused what its ACLs do not allow. The rest of the suite runs on the same listener."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from shared import topics
from shared.kafka import client_options
from shared.settings import KafkaSecurity
from tests.integration.test_startup import run_intake


@pytest.fixture(scope="module")
def secrets() -> Path:
    assert os.environ.get("KAFKA_SECURITY_PROTOCOL") == "SASL_SSL" and os.environ.get("LADDER_KAFKA_SECRETS"), (
        "the suite runs against the secured local broker: `make test` (or source var/secrets/kafka-client.env)"
    )
    return Path(os.environ["LADDER_KAFKA_SECRETS"])


def test_a_wrong_password_is_refused_in_one_line_without_the_password(platform, secrets):
    result, _ = run_intake(KAFKA_SASL_PASSWORD_FILE="", KAFKA_SASL_PASSWORD="not-the-password-42")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "(KAFKA_SECURITY_PROTOCOL=SASL_SSL, user admin): Kafka broker unreachable or refused the client" in last
    assert "SaslAuthenticationFailed" in last and "invalid credentials" in last
    assert "not-the-password-42" not in result.stderr + result.stdout


def test_a_client_without_credentials_is_refused_in_one_line(platform, secrets):
    plaintext = dict.fromkeys(("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD_FILE"), "")
    result, _ = run_intake(**plaintext, KAFKA_SSL_CA_FILE="", KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "(KAFKA_SECURITY_PROTOCOL=PLAINTEXT): Kafka broker unreachable or refused the client" in last
    assert "does the listener expect TLS?" in last


def test_an_untrusted_broker_certificate_is_refused(platform, secrets):
    result, _ = run_intake(KAFKA_SSL_CA_FILE="")  # the system's CAs do not know the local CA
    assert result.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr.strip().splitlines()[-1]


def login(secrets: Path, principal: str) -> KafkaSecurity:
    """The principal's own login, as services.sh gives it to the service."""
    return KafkaSecurity(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME=principal,
        KAFKA_SASL_PASSWORD_FILE=str(secrets / f"kafka-{principal}.password"),
        KAFKA_SSL_CA_FILE=str(secrets / "ca.crt"),
    )


async def send_as(secrets: Path, principal: str, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        request_timeout_ms=10_000,
        **client_options(login(secrets, principal)),
    )
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"not allowed", key=b"acl-test"), 30)
    finally:
        await producer.stop()


async def partitions_as(secrets: Path, principal: str, topic: str) -> set[int]:
    """What `principal` may describe (the positive control: its login works)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], **client_options(login(secrets, principal))
    )
    await producer.start()
    try:
        return await asyncio.wait_for(producer.partitions_for(topic), 30)
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("principal", "may_describe", "refused"),
    [
        ("router", topics.TICKET_EVENTS, topics.TICKET_COMMANDS),
        ("escalation", topics.TICKET_EVENTS, topics.TICKET_COMMANDS),
        ("metrics", topics.TICKET_EVENTS, topics.TICKET_EVENTS),
        ("metrics", topics.DEAD_LETTER, topics.TICKET_COMMANDS),
        ("upstream", topics.TICKET_COMMANDS, topics.TICKET_EVENTS),
        ("upstream", topics.TICKET_COMMANDS, topics.DEAD_LETTER),
        ("intake", topics.TICKET_COMMANDS, "t-not-ours.support.ticket-events"),
    ],
)
async def test_each_principal_is_refused_what_its_acls_do_not_allow(
    platform, secrets, principal, may_describe, refused
):
    assert len(await partitions_as(secrets, principal, may_describe)) >= 1
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as(secrets, principal, refused)
