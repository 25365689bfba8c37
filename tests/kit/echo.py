"""A minimal service on the delivery kit, so the kit's promises are tested as a library:
it applies every event it reads (a row per event) and echoes each to an output topic.
`python -m tests.kit.echo` runs it as a real process (for crash and takeover tests)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.delivery.events import Effects, EventBatch
from shared.delivery.records import OutboxRecord
from shared.service import ServiceRuntime, main
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


class EchoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ECHO_", case_sensitive=False, extra="ignore")

    port: int = Field(8099, ge=1, le=65535)
    consumer_group: str = "kit-echo"
    schema_name: str = "kit_echo"
    input_topic: str = "kit.in"
    output_topic: str = "kit.out"


class Echo:
    types = frozenset({"ticket.created", "ticket.responded", "ticket.resolved"})

    def __init__(self, settings: EchoSettings) -> None:
        self.schema, self.output = settings.schema_name, settings.output_topic
        self.attempts: Counter[str] = Counter()  # per ticket: how often a transaction saw it
        self.bug: Exception | None = None  # a test's stand-in for a bad deploy: every record fails with it

    async def apply(self, conn: asyncpg.Connection, batch: EventBatch) -> Effects:
        for event in batch.events:
            self.attempts[event.ticket_id] += 1
        if self.bug is not None and batch.events:
            raise self.bug
        await conn.execute(
            f"INSERT INTO {self.schema}.applied SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            [e.id for e in batch.events],
            [e.ticket_id for e in batch.events],
            [e.type for e in batch.events],
        )
        return Effects(
            records=[
                OutboxRecord(self.output, e.ticket_id.encode(), e.id.encode(), [("echo_of", e.id.encode())])
                for e in batch.events
            ]
        )


def create_app(settings: EchoSettings) -> FastAPI:
    runtime = ServiceRuntime(name="echo", schema=settings.schema_name, settings=settings, migrations=MIGRATIONS)
    echo = Echo(settings)
    runtime.consume_events(echo, topic=settings.input_topic)
    app = runtime.app(title="kit echo", description="a test service on the delivery kit")
    app.state.echo, app.state.runtime = echo, runtime
    return app


if __name__ == "__main__":
    main("echo", EchoSettings, create_app)
