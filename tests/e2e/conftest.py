"""All four services as real processes on private topics and schemas: the whole pipeline,
isolated from everything else on the broker and database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from services.intake.core.helpdesks.mapping import VENDORS
from shared.db import drop_schemas
from shared.topics import Topics
from simulator.helpdesks import MAPPINGS
from tests.kafka_tools import private_topics
from tests.processes import ROOT, ServiceProcess

CHARTER = ROOT / "tests" / "charters" / "e2e.yaml"  # the demo charter, SLAs of 20 s and 30 s
API_KEY = "ladder-dev-helpdesk-key"  # deploy/local/api-keys.json, every action
# the help desks of deploy/helpdesks, connected with secrets of this run (what their mappings' secret_env name)
HELPDESK_SECRETS = {f"LADDER_{vendor.upper()}_SECRET": uuid.uuid4().hex for vendor in VENDORS}
SERVICES = ("metrics", "router", "escalation", "intake")


@dataclass
class Ladder:
    prefix: str
    topics: Topics
    processes: dict[str, ServiceProcess]
    schemas: list[str]

    def url(self, service: str) -> str:
        return self.processes[service].url


@pytest.fixture(scope="module")
async def ladder(platform):
    run = uuid.uuid4().hex[:8]
    async with private_topics(platform.kafka_bootstrap_servers, prefix=f"e2e-{run}.") as (prefix, topics):
        schemas = {service: f"{service}_e2e_{run}" for service in ("intake", "router", "escalation", "metrics")}
        common = {
            "LADDER_TOPIC_PREFIX": prefix,
            "LADDER_CHARTER": str(CHARTER),
            "LOG_LEVEL": "WARNING",
            "INTAKE_API_KEYS_FILE": str(ROOT / "deploy" / "local" / "api-keys.json"),
            "INTAKE_HELPDESKS_DIR": str(MAPPINGS),
            # the simulator's commands for unknown tickets are dead-lettered after this wait (60 s
            # by default); every real follow-up's create is read within it here
            "INTAKE_UNKNOWN_TICKET_WAIT_S": "10",
            **HELPDESK_SECRETS,
        }
        processes = {}
        try:
            for service in SERVICES:
                env = {**common, f"{service.upper()}_CONSUMER_GROUP": f"e2e-{service}-{run}"}
                if service in schemas:
                    env[f"{service.upper()}_SCHEMA_NAME"] = schemas[service]
                if service == "metrics":
                    env["METRICS_REFRESH_INTERVAL_S"] = "1"
                processes[service] = ServiceProcess(service, env).start()
            yield Ladder(prefix, topics, processes, list(schemas.values()))
        finally:
            for process in processes.values():
                process.terminate(timeout=30) if process.proc and process.proc.poll() is None else None
            await drop_schemas(platform.database_url, *schemas.values())
