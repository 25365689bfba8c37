"""The metrics projection on this machine: events projected per second, KPI refresh time and
/metrics scrape time with many tickets projected.

`python -m bench.metrics_projection [--tickets 1000000] [--days 365]` generates realistic
ticket histories (L1 resolutions, escalations, bounces, returns with a fix, jumps, reopens,
ratings, SLA breaches, open tickets), encodes them as the CloudEvents records Kafka would
deliver, and feeds them straight into the kit's event consumer (`EventConsumer.process`:
decode, ticket locks, inbox claims, the staleness rule and the projection, one transaction
per batch of 500) with two concurrent members, like METRICS_CONSUMERS=2; Kafka's fetch is
the only part left out. Then it times the refresh (`ProjectionStore.read`) and scrapes the
real service process (`python -m services.metrics` on the projected schema). Prints a table
and writes var/bench/metrics.json. Numbers only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry, generate_latest

from services.metrics.adapters.exporter import KpiCollector, Refresher
from services.metrics.adapters.read_store import ReadStore
from services.metrics.adapters.store import MIGRATIONS, ProjectionStore
from services.metrics.handlers.events import KpiProjection
from shared.db import create_pool, drop_schemas
from shared.delivery.events import EventConsumer
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.records import SourceRecord
from shared.emitters import emitter
from shared.envelope import format_time
from shared.kafka import client_options
from shared.partitioning import partition_for
from shared.service import migrate
from shared.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://ladder:ladder@localhost:5432/ladder")
PARTITIONS, MEMBERS, BATCH = 6, 2, 500


# --- realistic histories ---------------------------------------------------------------


class History:
    """One ticket's events as (time, type, body) in stream order."""

    def __init__(self, ticket_id: str, start: datetime) -> None:
        self.id, self.at = ticket_id, start
        self.events: list[tuple[datetime, str, dict]] = []
        self.add(
            0,
            "ticket.created",
            customer_id="acme",
            channel="email",
            subject="s",
            intent="login",
            priority="P3",
            customer_blocked=False,
            created_at=format_time(start),
        )

    def add(self, minutes: float, type_: str, **body: object) -> History:
        self.at += timedelta(minutes=minutes)
        self.events.append((self.at, type_, {"ticket_id": self.id, **body}))
        return self

    def routed(self, minutes: float, tier: str, reason: str) -> History:
        return self.add(minutes, "ticket.routed", tier=tier, queue=f"{tier.lower()}-general", reason=reason)

    def responded(self, minutes: float, tier: str) -> History:
        return self.add(minutes, "ticket.responded", tier=tier, agent_id="agent-7")

    def requested(self, minutes: float, from_tier: str, to_tier: str, attachments: tuple[str, ...] = ()) -> History:
        return self.add(
            minutes,
            "ticket.escalation_requested",
            from_tier=from_tier,
            to_tier=to_tier,
            agent_id="agent-7",
            checklist={
                "impact": "one team",
                "steps_attempted": ["restart"],
                "attachments": list(attachments),
                "problem_statement": "SSO fails",
            },
            hypothesis="expired IdP certificate",
        )

    def escalated(self, minutes: float, from_tier: str, to_tier: str, reason: str = "handoff") -> History:
        return self.add(minutes, "ticket.escalated", from_tier=from_tier, to_tier=to_tier, reason=reason)

    def bounced(self, minutes: float, from_tier: str, to_tier: str, reason: str) -> History:
        return self.add(
            minutes,
            "ticket.bounced",
            from_tier=from_tier,
            to_tier=to_tier,
            reason=reason,
            missing=["attachments"] if reason == "handoff_incomplete" else [],
        )

    def resolved(self, minutes: float, tier: str) -> History:
        return self.add(minutes, "ticket.resolved", tier=tier, agent_id="agent-7", resolution_code="fixed")


def minutes(rng: random.Random, median: float) -> float:
    return rng.lognormvariate(0, 1) * median


def history(rng: random.Random, ticket_id: str, start: datetime, now: datetime) -> History:
    h, path = History(ticket_id, start), rng.random()
    h.routed(0.1, "L1" if path < 0.9 else "L2", "rule")
    if path >= 0.9:  # straight to L2
        h.responded(minutes(rng, 60), "L2").resolved(minutes(rng, 600), "L2")
    elif path < 0.55:  # L1 resolves
        if rng.random() < 0.05:
            h.add(minutes(rng, 30), "ticket.sla_breached", tier="L1", kind="first_response", deadline=format_time(h.at))
        h.responded(minutes(rng, 20), "L1").resolved(minutes(rng, 120), "L1")
    elif path < 0.63:  # incomplete handoff bounced back
        h.responded(minutes(rng, 20), "L1").requested(minutes(rng, 60), "L1", "L2")
        h.bounced(1, "L2", "L1", "handoff_incomplete").routed(0.1, "L1", "bounce").resolved(minutes(rng, 240), "L1")
    elif path < 0.70:  # jump: L3 owns, L1 keeps the customer updated
        h.events.pop()
        h.routed(0.1, "L3", "jump").responded(minutes(rng, 15), "L1").responded(minutes(rng, 240), "L3")
        h.resolved(minutes(rng, 1440), "L3")
    else:  # escalated to L2
        h.responded(minutes(rng, 20), "L1").requested(minutes(rng, 90), "L1", "L2", ("idp-log-4711.txt",))
        h.escalated(1, "L1", "L2").routed(0.1, "L2", "escalation").responded(minutes(rng, 90), "L2")
        if path < 0.78:  # L2 found a quick fix: back to L1, which closes the loop
            h.add(
                minutes(rng, 120),
                "ticket.return_requested",
                from_tier="L2",
                to_tier="L1",
                agent_id="agent-9",
                fix_summary="rotate the certificate",
            )
            h.bounced(1, "L2", "L1", "returned_with_fix").routed(0.1, "L1", "bounce").resolved(minutes(rng, 30), "L1")
        elif path < 0.84:  # on to engineering
            h.escalated(minutes(rng, 600), "L2", "L3").routed(0.1, "L3", "escalation").resolved(
                minutes(rng, 2880), "L3"
            )
        else:
            h.resolved(minutes(rng, 600), "L2")
    if rng.random() < 0.05:  # the customer comes back
        h.add(minutes(rng, 1440), "ticket.reopened").routed(0.1, "L1", "reopen").responded(minutes(rng, 30), "L1")
        h.resolved(minutes(rng, 120), "L1")
    if rng.random() < 0.4:
        h.add(minutes(rng, 60), "ticket.rated", score=rng.choice((1, 2, 3, 4, 4, 5, 5, 5)))
    h.events = [event for event in h.events if event[0] <= now]  # recent tickets are still open
    return h


def chunks(tickets: int, days: int, seed: int, per_chunk: int = 2000) -> Iterator[list[tuple[datetime, str, dict]]]:
    """Tickets created evenly over the last `days`, oldest first, `per_chunk` at a time; a
    chunk's events in time order (a ticket's own order kept)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    first = now - timedelta(days=days)
    step = timedelta(days=days) / tickets
    run = uuid.uuid4().hex[:6]
    for begin in range(0, tickets, per_chunk):
        events = []
        for index in range(begin, min(begin + per_chunk, tickets)):
            events += history(rng, f"b{run}-{index}", first + step * index, now).events
        events.sort(key=lambda event: event[0])
        yield events


def records(events: list[tuple[datetime, str, dict]], offsets: list[int]) -> list[list[SourceRecord]]:
    """The events as Kafka would deliver them, per partition (by the key, like every producer)."""
    per_partition: list[list[SourceRecord]] = [[] for _ in range(PARTITIONS)]
    for at, type_, body in events:
        key = body["ticket_id"].encode()
        partition = partition_for(key, PARTITIONS)
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", uuid.uuid4().hex.encode()),
            ("ce_type", type_.encode()),
            ("ce_source", emitter(type_).encode()),  # any other source is dead-lettered (events from their emitters)
            ("ce_time", format_time(at).encode()),
            ("ce_subject", key),
            ("ce_correlationid", key),
            ("content-type", b"application/json"),
        ]
        per_partition[partition].append(
            SourceRecord("bench", partition, offsets[partition], 0, key, orjson.dumps(body), headers)
        )
        offsets[partition] += 1
    return per_partition


# --- the measurements ------------------------------------------------------------------


async def project(schema: str, tickets: int, days: int, seed: int, read_model: bool = False) -> dict:
    """`read_model`: also the read API's tables (timelines, current states), as the service does."""
    pool = await create_pool(DATABASE_URL, min_size=MEMBERS + 1, max_size=MEMBERS + 2)
    await migrate(pool, schema, MIGRATIONS)
    consumer = EventConsumer(
        service="metrics",
        schema=schema,
        handler=KpiProjection(ProjectionStore(schema), ReadStore(schema) if read_model else None),
        metrics=DeliveryMetrics(CollectorRegistry()),
        pool=lambda: pool,
        dead_letter_topic="bench.dead-letter",
    )

    async def member(partitions: list[list[SourceRecord]]) -> None:
        for records_ in partitions:
            for start in range(0, len(records_), BATCH):
                await consumer.process(records_[start : start + BATCH])

    events, busy, cpu, offsets, reported = 0, 0.0, 0.0, [0] * PARTITIONS, time.monotonic()
    for chunk in chunks(tickets, days, seed):
        per_partition = records(chunk, offsets)
        started, started_cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(member(per_partition[m::MEMBERS]) for m in range(MEMBERS)))
        busy += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        events += len(chunk)
        if time.monotonic() - reported > 30:
            reported = time.monotonic()
            print(f"  {events:,} events projected, {events / busy:,.0f}/s", file=sys.stderr)
    await pool.close()
    # python_cpu_share: how busy the service's own process was (the rest: PostgreSQL, waits)
    return {
        "events": events,
        "seconds": round(busy, 1),
        "events_per_s": round(events / busy),
        "python_cpu_share": round(cpu / busy, 2),
    }


async def refresh_and_scrape(schema: str, rounds: int) -> dict:
    pool = await create_pool(DATABASE_URL, min_size=1, max_size=2)
    await pool.execute(f"VACUUM ANALYZE {schema}.sample")  # what autovacuum does after a bulk load
    refresher = Refresher(ProjectionStore(schema), lambda: pool, clock=lambda: datetime.now(UTC))
    registry = CollectorRegistry()
    registry.register(KpiCollector(refresher, clock=lambda: datetime.now(UTC)))
    refreshes, renders = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        snapshot = await refresher.refresh()
        refreshes.append(time.perf_counter() - started)
        started = time.perf_counter()
        generate_latest(registry)
        renders.append(time.perf_counter() - started)
    sizes = dict(
        await pool.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
            schema,
        )
    )
    tickets = await pool.fetchval(f"SELECT count(*) FROM {schema}.ticket")
    await pool.close()
    return {
        "tickets": tickets,
        "tiers": snapshot.tiers,
        "refresh_ms": {"median": ms(statistics.median(refreshes)), "max": ms(max(refreshes))},
        "render_ms": {"median": ms(statistics.median(renders)), "max": ms(max(renders))},
        "table_mib": {name: round(size / 2**20) for name, size in sorted(sizes.items())},
    }


async def scrape_service(schema: str, rounds: int) -> dict:
    """The real service process on the projected schema (its consumers on empty private topics)."""
    async with service_on(schema) as (proc, url):
        return await scrape(proc, url, rounds)


@asynccontextmanager
async def service_on(schema: str) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """`python -m services.metrics` on `schema`, ready, with empty private topics; its URL."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    names = list(Topics.prefixed(prefix).all)
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, **client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
        port, log = free_port(), ROOT / "var" / "bench" / "metrics.log"
        env = {
            "LADDER_TOPIC_PREFIX": prefix,
            "METRICS_SCHEMA_NAME": schema,
            "METRICS_PORT": str(port),
            "METRICS_CONSUMER_GROUP": f"{prefix}bench",
            "LOG_LEVEL": "WARNING",
        }
        proc = start_service(env, log)
        try:
            await ready(proc, f"http://127.0.0.1:{port}", log)
            yield proc, f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        await admin.delete_topics(names)
        await admin.close()


async def ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + 120
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"metrics did not start; see {log}")
            await asyncio.sleep(0.5)


async def scrape(proc: subprocess.Popen[bytes], url: str, rounds: int) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        scrapes = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = await client.get("/metrics")
            scrapes.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    ordered = sorted(scrapes)
    return {
        "scrape_ms": {
            "median": ms(statistics.median(ordered)),
            "p99": ms(ordered[int(len(ordered) * 0.99) - 1]),
            "max": ms(ordered[-1]),
        },
        "scrape_bytes": len(response.content),
        "service_rss_mib": rss_mib(proc.pid),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "services.metrics"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def run(args: argparse.Namespace) -> dict:
    schema = args.schema or f"bench_metrics_{uuid.uuid4().hex[:8]}"
    result: dict = {"tickets": args.tickets, "days": args.days, "schema": schema}
    try:
        if not args.skip_projection:
            print(
                f"projecting {args.tickets:,} tickets over {args.days} days into schema {schema} ...", file=sys.stderr
            )
            result["projection"] = await project(schema, args.tickets, args.days, args.seed)
        result["refresh"] = await refresh_and_scrape(schema, args.rounds)
        result["service"] = await scrape_service(schema, args.rounds * 10)
    finally:
        if not args.keep:
            await drop_schemas(DATABASE_URL, schema)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365, help="tickets are created evenly over this many days")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=10, help="refreshes timed (scrapes: ten times as many)")
    parser.add_argument("--schema", help="project into (or, with --skip-projection, read) this schema")
    parser.add_argument("--skip-projection", action="store_true", help="only time refreshes and scrapes")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    out = ROOT / "var" / "bench" / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
