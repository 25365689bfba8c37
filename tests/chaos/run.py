"""One chaos run: the three-node cluster and a PostgreSQL of its own (started by the
project's scripts unless already up), proxies in front of both, the four services as real
processes on private topics and schemas, simulated traffic over HTTP and the commands topic
while the faults go on, then quiescence and the ledger (tests/chaos/ledger.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from shared.charter import load_charter
from shared.db import drop_schemas
from shared.kafka import client_options, create_topics
from shared.topics import Topics
from simulator.driver import Run
from simulator.plans import plan_tickets
from tests.chaos.faults import Faults, script
from tests.chaos.ledger import Consumer, Ledger, check_ledger, quiesce
from tests.chaos.proxy import Proxy, Route
from tests.chaos.traffic import ChaosDriver, Sent
from tests.processes import ROOT, ServiceProcess

log = logging.getLogger("chaos")
CHARTER = ROOT / "tests" / "charters" / "e2e.yaml"  # SLAs of 20 s and 30 s: lapses happen within a run
API_KEY = "ladder-dev-helpdesk-key"
SERVICES = ("metrics", "router", "escalation", "intake")
TOPIC_OF = {"intake": "commands"}  # what each service's group reads; the others read the events

# cluster.sh's ports: the real client listeners, the proxy in front of them, the direct ones.
# CHAOS_PORT_OFFSET (0) moves every port of the run, so two runs can share a machine (a long
# `make chaos` beside `make test`); cluster.sh and postgres.sh get the same numbers.
OFFSET = int(os.environ.get("CHAOS_PORT_OFFSET", "0"))
CLIENT_PORTS = tuple(19092 + OFFSET + n for n in range(3))
ADVERTISED_PORTS = tuple(19392 + OFFSET + n for n in range(3))
DIRECT = ",".join(f"127.0.0.1:{19292 + OFFSET + n}" for n in range(3))
PG_PORT, PG_PROXY_PORT = 15432 + OFFSET, 15433 + OFFSET
PG_ENV = {
    "DATABASE_URL": f"postgresql://ladder:ladder@localhost:{PG_PORT}/ladder",
    "PG_CLUSTER_NAME": f"chaos{OFFSET or ''}",
}
CLUSTER_ENV = {
    "CLUSTER_CLIENT_PORT": str(19092 + OFFSET),
    "CLUSTER_CONTROLLER_PORT": str(19192 + OFFSET),
    "CLUSTER_INTERNAL_PORT": str(19292 + OFFSET),
    "CLUSTER_ADVERTISED_PORT": str(19392 + OFFSET),
}


@contextlib.contextmanager
def plaintext_kafka() -> Iterator[None]:
    """The chaos cluster listens in plaintext (its faults are under test, not its security):
    the secured local broker's client settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
    KAFKA_SSL_*, KCAT_*) must reach neither this process' clients, the scripts, nor the
    services it starts."""
    saved = {
        name: os.environ.pop(name)
        for name in list(os.environ)
        if name.startswith(("KAFKA_SASL_", "KAFKA_SSL_", "KCAT_"))  # kcat reads KCAT_CONFIG itself
    }
    saved_protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL")
    os.environ["KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
    try:
        yield
    finally:
        os.environ.update(saved)
        if saved_protocol is None:
            os.environ.pop("KAFKA_SECURITY_PROTOCOL", None)
        else:
            os.environ["KAFKA_SECURITY_PROTOCOL"] = saved_protocol


@dataclass
class Options:
    tickets: int = 300
    seed: int = 1
    concurrency: int = 200
    rate: float | None = None
    fault_interval_s: float = 10.0
    broker_down_s: float = 15.0
    keep_platform: bool = False  # leave the cluster and PostgreSQL running afterwards
    log_dir: Path = field(default_factory=lambda: ROOT / "var" / "chaos")


@dataclass
class Report:
    tickets: int
    finished: int
    seconds: float
    quiesce_seconds: float
    faults: dict[str, int]
    timeline: list[str]
    commands: dict[str, int]
    retries: dict[str, int]
    ledger: Ledger
    log_dir: str

    @property
    def ok(self) -> bool:
        return self.ledger.ok and self.finished == self.tickets

    def as_dict(self) -> dict[str, Any]:
        ledger = self.ledger
        return {
            "ok": self.ok,
            "tickets": self.tickets,
            "finished": self.finished,
            "seconds": round(self.seconds, 1),
            "quiesce_seconds": round(self.quiesce_seconds, 1),
            "faults": self.faults,
            "commands": self.commands,
            "retries": self.retries,
            "stream": {
                "records": ledger.records,
                "events": ledger.events,
                "duplicate_records": ledger.duplicate_records,
                "tickets": ledger.tickets,
                "accepted_commands": ledger.accepted,
            },
            "lost": len(ledger.lost),
            "doubled": len(ledger.doubled),
            "unprojected": len(ledger.unprojected),
            "kpi_differences": len(ledger.kpi_differences),
            "stalls": ledger.stalls,
            "dead_letters": dict(ledger.dead_letters),
            "unexpected_dead_letters": len(ledger.unexpected_dead_letters),
            "examples": {
                "lost": ledger.lost[:10],
                "doubled": ledger.doubled[:10],
                "unprojected": ledger.unprojected[:10],
                "kpi_differences": ledger.kpi_differences[:20],
                "unexpected_dead_letters": ledger.unexpected_dead_letters[:10],
            },
            "timeline": self.timeline,
            "log_dir": self.log_dir,
        }


async def run(options: Options) -> Report:
    run_id = uuid.uuid4().hex[:8]
    log_dir = options.log_dir / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    with plaintext_kafka():
        await script("postgres.sh", "start", env=PG_ENV)
        await script("cluster.sh", "start", env=CLUSTER_ENV)
        try:
            return await _run(options, run_id, log_dir)
        finally:
            if not options.keep_platform:
                await script("cluster.sh", "stop", env=CLUSTER_ENV)
                await script("postgres.sh", "stop", env=PG_ENV)


async def _run(options: Options, run_id: str, log_dir: Path) -> Report:
    kafka_proxy = await Proxy(
        [Route(a, "127.0.0.1", c) for a, c in zip(ADVERTISED_PORTS, CLIENT_PORTS, strict=True)]
    ).start()
    pg_proxy = await Proxy([Route(PG_PROXY_PORT, "127.0.0.1", PG_PORT)]).start()
    prefix = f"chaos-{run_id}."
    topics = Topics.prefixed(prefix)
    await create_topics(DIRECT, topics.all, 6, replication=3)
    schemas = {service: f"{service}_chaos_{run_id}" for service in SERVICES}
    proxied_db = f"postgresql://ladder:ladder@127.0.0.1:{PG_PROXY_PORT}/ladder"
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": ",".join(f"127.0.0.1:{p}" for p in ADVERTISED_PORTS),
        "DATABASE_URL": proxied_db,
        "LADDER_TOPIC_PREFIX": prefix,
        "LADDER_CHARTER": str(CHARTER),
        "LOG_LEVEL": "WARNING",
        "INTAKE_API_KEYS_FILE": str(ROOT / "deploy" / "local" / "api-keys.json"),
        "METRICS_REFRESH_INTERVAL_S": "1",
    }
    processes: dict[str, ServiceProcess] = {}
    consumers = []
    try:
        for service in SERVICES:
            group = f"chaos-{service}-{run_id}"
            env = {
                **common,
                f"{service.upper()}_CONSUMER_GROUP": group,
                f"{service.upper()}_SCHEMA_NAME": schemas[service],
            }
            processes[service] = ServiceProcess(service, env, log_dir=log_dir)
            await asyncio.to_thread(processes[service].start, 120.0)
            topic = topics.commands if TOPIC_OF.get(service) == "commands" else topics.events
            consumers.append(Consumer(service, group, topic, schemas[service], processes[service].url))
        report = await _drive(options, run_id, topics, processes, consumers, kafka_proxy, pg_proxy)
        report.log_dir = str(log_dir)
        return report
    finally:
        for process in processes.values():
            with contextlib.suppress(Exception):
                if process.proc and process.proc.poll() is None:
                    await asyncio.to_thread(process.terminate, 30)
        await kafka_proxy.stop()
        await pg_proxy.stop()
        with contextlib.suppress(Exception):
            await drop_schemas(PG_ENV["DATABASE_URL"], *schemas.values())
        with contextlib.suppress(Exception):
            admin = AIOKafkaAdminClient(bootstrap_servers=DIRECT, **client_options())
            await admin.start()
            try:
                await admin.delete_topics(list(topics.all))
            finally:
                await admin.close()


async def _drive(
    options: Options,
    run_id: str,
    topics: Topics,
    processes: dict[str, ServiceProcess],
    consumers: list[Consumer],
    kafka_proxy: Proxy,
    pg_proxy: Proxy,
) -> Report:
    charter = load_charter(str(CHARTER))
    plans = plan_tickets(options.seed, options.tickets, charter)
    sent = Sent()
    driver = ChaosDriver(
        sent=sent,
        intake_url=processes["intake"].url,
        api_key=API_KEY,
        bootstrap=DIRECT,  # the outside world reaches the brokers directly; only the services pass the proxy
        topics=topics,
        concurrency=options.concurrency,
        rate=options.rate,
        stall_s=180.0,
    )
    faults = Faults(
        processes,
        kafka_proxy,
        pg_proxy,
        PG_ENV,
        CLUSTER_ENV,
        interval_s=options.fault_interval_s,
        broker_down_s=options.broker_down_s,
    )
    started = time.monotonic()
    done, step = 0, max(1, len(plans) // 20)

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if done % step == 0:
            log.warning("%d/%d tickets finished after %.0fs", done, len(plans), time.monotonic() - started)

    traffic = asyncio.create_task(driver.run(Run(run_id, plans), progress))
    chaos = asyncio.create_task(faults.run(keep_going=lambda: not traffic.done()))
    try:
        result = await traffic
        await chaos
    finally:
        chaos.cancel()
    seconds = time.monotonic() - started
    log.warning("traffic done in %.1fs; waiting for quiescence", seconds)
    quiet = await quiesce(DIRECT, PG_ENV["DATABASE_URL"], consumers, within_s=300)
    ledger = await check_ledger(
        bootstrap=DIRECT,
        database_url=PG_ENV["DATABASE_URL"],
        topics=topics,
        consumers=consumers,
        sent=sent,
        stuck=len(result.stuck),
    )
    return Report(
        tickets=len(plans),
        finished=len(result.done),
        seconds=seconds,
        quiesce_seconds=quiet,
        faults=dict(faults.injected),
        timeline=faults.timeline,
        commands=result.commands,
        retries=dict(sent.retries),
        ledger=ledger,
        log_dir="",
    )
