"""intake running in-process against the real broker and database."""

from __future__ import annotations

import json
import uuid

import pytest

from services.intake.core.auth import hash_key
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from shared import signing, topics
from shared.kafka import commit_group_at_end
from tests.apps import in_process, private_schema
from tests.kafka_tools import TopicReader

KEYS = {"helpdesk": "it-helpdesk-key", "chatbot": "it-chatbot-key", "deskops": "it-deskops-key", "lead": "it-lead-key"}
KEY_CONFIG = json.dumps(
    {
        "keys": [
            {
                "name": "helpdesk",
                "sha256": hash_key(KEYS["helpdesk"]),
                "actions": ["create", "respond", "escalate", "return", "resolve", "reopen", "rate", "claim"],
            },
            {"name": "chatbot", "sha256": hash_key(KEYS["chatbot"]), "actions": ["create", "respond"]},
            {  # a help desk's operations key: granted every ticket
                "name": "deskops",
                "sha256": hash_key(KEYS["deskops"]),
                "actions": ["respond", "resolve"],
                "tickets": "all",
            },
            {"name": "lead", "sha256": hash_key(KEYS["lead"]), "actions": ["read"], "tickets": "all"},
        ]
    }
)
HELPDESK = {"Authorization": f"Bearer {KEYS['helpdesk']}"}


def signed(key: bytes | None, value: bytes, client: str = "helpdesk") -> list[tuple[str, bytes | None]]:
    """The headers a topic writer signs a command with (shared.signing)."""
    return signing.sign(client, KEYS[client], key, value)


CHATBOT = {"Authorization": f"Bearer {KEYS['chatbot']}"}
DESKOPS = {"Authorization": f"Bearer {KEYS['deskops']}"}
LEAD = {"Authorization": f"Bearer {KEYS['lead']}"}


async def intake_env_at_tail(bootstrap: str, **overrides: str) -> dict[str, str]:
    """`intake_env` whose consumer group starts at the commands topic's tail."""
    env = intake_env(**overrides)
    await commit_group_at_end(bootstrap, env["INTAKE_CONSUMER_GROUP"], topics.TICKET_COMMANDS)
    return env


def intake_env(**overrides: str) -> dict[str, str]:
    return {
        "INTAKE_API_KEYS": KEY_CONFIG,
        "INTAKE_CONSUMER_GROUP": f"intake-test-{uuid.uuid4().hex[:8]}",
        "INTAKE_SCHEMA_NAME": private_schema("intake"),
        "INTAKE_MAX_BODY_BYTES": "8192",
        "INTAKE_MAX_COMMAND_BYTES": "8192",
        "INTAKE_UNKNOWN_TICKET_WAIT_S": "1",  # a follow-up waits this long for its create (test_ordering: longer)
        **overrides,
    }


@pytest.fixture(scope="module")
async def intake(platform):
    """An in-process intake (HTTP via ASGI, consumer and relay on the real broker). Its new
    consumer group starts at the tail: commands left by earlier runs are not replayed."""
    env = await intake_env_at_tail(platform.kafka_bootstrap_servers)
    async with in_process(create_app, IntakeSettings, env) as (_, client):
        yield client


@pytest.fixture
async def events(platform):
    async with TopicReader(platform.kafka_bootstrap_servers, topics.TICKET_EVENTS) as reader:
        yield reader


@pytest.fixture
async def dead_letters(platform):
    async with TopicReader(platform.kafka_bootstrap_servers, topics.DEAD_LETTER) as reader:
        yield reader


def ticket_body(unique: str, **changes) -> dict:
    return {
        "customer_id": f"cust-{unique}",
        "channel": "email",
        "subject": "Invoice PDF is blank",
        "intent": "billing",
        "priority": "P3",
        **changes,
    }
