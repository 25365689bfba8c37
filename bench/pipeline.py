"""`make bench`: the whole pipeline on the real broker and database, all on this machine.

intake, router, escalation and metrics run as processes on a private namespace. A ticket
lifecycle is three commands on the commands topic: the create, and once router has routed
it to L1, the L1 agent's response and resolution (the bench plays the agents); it is
complete when the metrics service's KPIs count the resolution at L1.
0. Warm-up, not measured: `--broker-warmup` records through a bare passthrough (a freshly
   started broker's JIT compiler otherwise runs through every phase; a long-running broker's
   does not), then `--warmup` lifecycles (the services' caches and statements).
1. Burst: `--lifecycles` as fast as possible: sustained lifecycles/s and events/s.
2. Steady: `--rate` lifecycles/s for `--seconds`: latency from the create command's
   acknowledgement to its ticket.routed written (the record's timestamp), and from the
   resolution command's acknowledgement to the KPI counting it (p50, p99). KPIs are sampled every 50 ms from the
   metrics service; the i-th resolution sent is matched to the moment the count reaches i.
   The two hops, to say where the time goes: command acknowledged -> its ticket.resolved
   written to the events topic (intake's batch, commit and relay; the record's timestamp),
   and that -> the KPI (metrics' batch, commit and refresh; the i-th event to the i-th count).
3. Baseline, in the same run: a bare aiokafka consume-and-produce passthrough of the same
   number of events on the same broker, so the pipeline's rate is also a ratio.
Peak RSS, CPU seconds per service (and PostgreSQL, Kafka), CPU per lifecycle in each phase,
each consumer's records and milliseconds per batch and the KPI refresh's duration say where
the time goes; the machine's busy and stolen shares in each phase say whether it was full,
and whether the hypervisor gave its CPUs to others (then the same run is slower);
`--profile` adds each service's top five costs (py-spy, bench/common.py) and PostgreSQL's
five costliest statements (pg_stat_statements), in the burst and at the steady rate.
Writes var/bench/pipeline.json and prints a markdown table. Numbers only: nothing asserts.
4. `--plaintext HOST:PORT`: then all of it again with every client on that PLAINTEXT listener
   (no login, no TLS), same database and sizes, printed beside the first run: what the
   environment's secured listener (SASL_SSL) costs.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    BOOTSTRAP,
    DATABASE_URL,
    OUT,
    ROOT,
    Machine,
    Namespace,
    Profiler,
    Service,
    machine_shares,
    machine_ticks,
    platform_cpu,
)
from services.intake.core.commands import CreateTicketRequest
from services.intake.core.tickets import command_id, new_ticket_id
from shared import signing
from shared.db import connect_options
from shared.kafka import client_options, create_topics, topic_partitions

KEY, CLIENT = "ladder-dev-helpdesk-key", "helpdesk"  # deploy/local/api-keys.json
CHARTER = ROOT / "tests" / "charters" / "burst.yaml"  # every tier staffed around the clock
SERVICES = ("metrics", "router", "escalation", "intake")
CPU_NAMES = {
    "kafka_jit": "kafka, of which its JIT compiler",
    "bench": "the bench itself (load generator: producer, L1 agents, KPI poller)",
}
NOT_LADDER = {"kafka_jit", "bench"}  # part of kafka; the load, not the system under it


def create(run: str, i: int) -> tuple[str, bytes]:
    """The ticket id and create command of lifecycle `i`."""
    external = f"bench-{run}-{i}"
    body = {
        "customer_id": f"c{i % 100}",
        "channel": "api",
        "subject": f"bench {i}",
        "intent": "login",
        "priority": "P3",
        "external_id": external,
    }
    ticket = new_ticket_id(
        CLIENT, CreateTicketRequest.model_validate(body), command_id(CLIENT, idempotency_key=f"{external}/create")
    )
    return ticket, orjson.dumps({"type": "create_ticket", "command_id": f"{external}/create", **body})


def agent_commands(ticket: str) -> list[bytes]:
    """What the L1 agent sends once the ticket is routed to L1: a response, then the fix."""
    return [
        orjson.dumps(
            {
                "type": "record_response",
                "command_id": f"{ticket}/respond",
                "ticket_id": ticket,
                "tier": "L1",
                "agent_id": "a01",
            }
        ),
        orjson.dumps(
            {
                "type": "resolve_ticket",
                "command_id": f"{ticket}/resolve",
                "ticket_id": ticket,
                "tier": "L1",
                "agent_id": "a01",
                "resolution_code": "fixed",
            }
        ),
    ]


class Kpis:
    """The metrics service's count of L1 resolutions, sampled every 50 ms with its time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            while True:
                document = (await http.get("/v1/kpis")).json()
                self.samples.append((time.time(), document["windows"]["all"]["tiers"]["L1"]["resolutions"]))
                await asyncio.sleep(0.05)

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def count(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def reached(self, n: int) -> float | None:
        """When the count first reached `n` (counts never fall: a bisection, not a scan)."""
        at = bisect.bisect_left(self.samples, n, key=lambda sample: sample[1])
        return self.samples[at][0] if at < len(self.samples) else None


def signed(key: bytes | None, value: bytes) -> list[tuple[str, bytes | None]]:
    return signing.sign(CLIENT, KEY, key, value)


async def send_creates(
    producer: AIOKafkaProducer,
    topic: str,
    run: str,
    indexes: range,
    rate: float | None,
    acked: dict[str, float] | None = None,
) -> None:
    """Create commands for `indexes`, at `rate` per second (None: flat out); each ticket's
    acknowledgement time goes into `acked` when given."""
    started = time.monotonic()
    pending = []
    for i in indexes:
        if rate:
            ahead = started + (i - indexes.start) / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        ticket, value = create(run, i)
        sent = await producer.send(topic, value, key=ticket.encode(), headers=signed(ticket.encode(), value))
        if acked is not None:
            sent.add_done_callback(lambda _, t=ticket: acked.__setitem__(t, time.time()))
        pending.append(sent)
        if len(pending) > 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def l1_agents(
    producer: AIOKafkaProducer,
    topics: Any,
    resolved_at: dict[str, float],
    event_at: dict[str, float],
    routed_at: dict[str, float],
    created_at: dict[str, float],
) -> None:
    """The L1 agents: on each ticket's routing to L1 they answer and resolve it at once
    (commands on the ticket's partition); kept per ticket: when its routing was written,
    the resolution's acknowledgement time, and when its ticket.resolved was written."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, fetch_max_wait_ms=20, **client_options()
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(BOOTSTRAP, topics.events)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            for records in (await consumer.getmany(timeout_ms=100, max_records=5000)).values():
                for record in records:
                    kind = dict(record.headers).get("ce_type")
                    if kind == b"ticket.resolved" and record.key is not None:
                        event_at[record.key.decode()] = record.timestamp / 1000
                    if kind == b"ticket.created" and record.key is not None:
                        created_at[record.key.decode()] = record.timestamp / 1000
                    if kind != b"ticket.routed" or record.key is None:
                        continue
                    ticket = record.key.decode()
                    if ticket in resolved_at or b'"reason":"rule"' not in record.value:
                        continue
                    resolved_at[ticket] = 0.0
                    routed_at[ticket] = record.timestamp / 1000
                    respond, resolve = agent_commands(ticket)
                    await producer.send(topics.commands, respond, key=record.key, headers=signed(record.key, respond))
                    done = await producer.send(
                        topics.commands, resolve, key=record.key, headers=signed(record.key, resolve)
                    )
                    done.add_done_callback(lambda _, t=ticket: resolved_at.__setitem__(t, time.time()))
    finally:
        await consumer.stop()


async def events_written(topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, **client_options())
    await consumer.start()
    try:
        partitions = await topic_partitions(BOOTSTRAP, topic)
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def pipeline(args: argparse.Namespace, space: Namespace) -> dict[str, Any]:
    env = {
        "LADDER_CHARTER": str(CHARTER),
        "INTAKE_API_KEYS_FILE": str(ROOT / "deploy/local/api-keys.json"),
    }
    services = {name: Service(name, {**env, **space.env(name)}) for name in SERVICES}
    kpis = Kpis(services["metrics"].url)
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_batch_size=256 * 1024, **client_options()
    )
    await producer.start()
    kpis.start()
    result: dict[str, Any] = {}
    resolved_at: dict[str, float] = {}
    event_at: dict[str, float] = {}
    routed_at: dict[str, float] = {}
    written_at: dict[str, float] = {}  # each ticket's ticket.created
    agents = asyncio.create_task(l1_agents(producer, space.topics, resolved_at, event_at, routed_at, written_at))
    try:
        run, started_at = uuid.uuid4().hex[:8], time.time()
        # Warm up the services first (statement caches): a fresh start cost more per record.
        await send_creates(producer, space.topics.commands, run, range(args.warmup), None)
        while kpis.count() < args.warmup and time.time() - started_at < args.timeout:  # noqa: ASYNC110 - a remote count
            await asyncio.sleep(0.2)
        events_before = await events_written(space.topics.events)
        burst = range(args.warmup, args.warmup + args.lifecycles)
        cpu_before, ticks_before = cpu_now(services), machine_ticks()
        consumed_before = consumed(services)
        profile = await Profile.start(services, "burst") if args.profile else None
        started = time.time()
        await send_creates(producer, space.topics.commands, run, burst, None)
        while kpis.count() < burst.stop and time.time() - started < args.timeout:  # noqa: ASYNC110 - a remote count
            await asyncio.sleep(0.2)
        finished = kpis.reached(burst.stop) or time.time()
        completed = kpis.count() - args.warmup
        cpu_after, ticks_after = cpu_now(services), machine_ticks()
        if profile is not None:
            result["profile"] = {"burst": await profile.stop()}
        events = await events_written(space.topics.events) - events_before
        elapsed = finished - started
        result["burst"] = {
            "lifecycles": args.lifecycles,
            "completed": completed,
            "seconds": round(elapsed, 2),
            "lifecycles_per_s": round(completed / elapsed),
            "commands_per_s": round(3 * completed / elapsed),
            "events": events,
            "events_per_s": round(events / elapsed),
            "cpu_seconds": {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after},
            "machine": machine_shares(ticks_before, ticks_after),
            "batches": batches(consumed_before, consumed(services)),
        }
        # steady rate: latency from the resolution's acknowledgement to the KPI counting it
        base, seen = kpis.count(), set(resolved_at)
        steady = range(burst.stop, burst.stop + int(args.rate * args.seconds))
        created_at: dict[str, float] = {}
        consumed_before, cpu_before, ticks_before = consumed(services), cpu_now(services), machine_ticks()
        profile = await Profile.start(services, "steady") if args.profile else None
        await send_creates(producer, space.topics.commands, run, steady, args.rate, created_at)
        deadline = time.time() + args.timeout
        while kpis.count() < base + len(steady) and time.time() < deadline:  # noqa: ASYNC110 - a remote count
            await asyncio.sleep(0.2)
        if profile is not None:
            result["profile"]["steady"] = await profile.stop()
        mine = [ticket for ticket, at in resolved_at.items() if ticket not in seen and at]
        order = sorted(resolved_at[ticket] for ticket in mine)
        latencies = [at - sent for k, sent in enumerate(order) if (at := kpis.reached(base + k + 1)) is not None]
        to_routed = [routed_at[ticket] - at for ticket, at in created_at.items() if ticket in routed_at]
        to_created = [written_at[ticket] - at for ticket, at in created_at.items() if ticket in written_at]
        to_event = [event_at[ticket] - resolved_at[ticket] for ticket in mine if ticket in event_at]
        written = sorted(event_at[ticket] for ticket in mine if ticket in event_at)
        to_kpi = [at - w for k, w in enumerate(written) if (at := kpis.reached(base + k + 1)) is not None]
        consumed_after = consumed(services)
        result["steady"] = {
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "lifecycles": len(steady),
            "counted": len(latencies),
            **percentiles("", latencies),
            **percentiles("create_to_routed_", to_routed),
            **percentiles("create_to_created_", to_created),
            **percentiles("command_to_event_", to_event),
            **percentiles("event_to_kpi_", to_kpi),
            "batches": batches(consumed_before, consumed_after),
            "cpu_seconds": {name: round(seconds - cpu_before[name], 1) for name, seconds in cpu_now(services).items()},
            "machine": machine_shares(ticks_before, machine_ticks()),
            "kpi_refresh_ms": round(1000 * consumed_after["metrics"].get("refresh_seconds", 0), 1),
        }
        result["rss_mib"] = {
            name: {"peak": round(s.status("VmHWM"), 1), "now": round(s.status("VmRSS"), 1)}
            for name, s in services.items()
        }
    finally:
        agents.cancel()
        kpis.stop()
        await producer.stop()
        for service in services.values():
            service.stop()
    return result


class Profile:
    """One phase's profile: each service's top costs (py-spy), PostgreSQL's statements, and
    the whole machine's CPU by process and by library (perf)."""

    def __init__(self, profiler: Profiler, statements: Statements, machine: Machine) -> None:
        self.profiler, self.statements, self.machine = profiler, statements, machine

    @classmethod
    async def start(cls, services: dict[str, Service], phase: str) -> Profile:
        pids = {name: s.proc.pid for name, s in services.items()}
        machine = Machine({pid: name for name, pid in pids.items()} | {os.getpid(): "bench"}, f"pipeline-{phase}")
        return cls(Profiler(pids, f"pipeline-{phase}"), await Statements.reset(), machine)

    async def stop(self) -> dict[str, list[tuple[str, float]]]:
        return self.profiler.stop() | {"postgres": await self.statements.top()} | self.machine.stop()


class Statements:
    """PostgreSQL's side of a profile: pg_stat_statements between `reset` and `top`, when the
    server loads it (deploy/local/postgres.sh starts its cluster so, and lets the admin read it)."""

    def __init__(self, conn: asyncpg.Connection | None) -> None:
        self._conn = conn

    @classmethod
    async def reset(cls) -> Statements:
        conn = await asyncpg.connect(DATABASE_URL, **connect_options(DATABASE_URL))
        try:
            await conn.execute("SELECT pg_stat_statements_reset()")
        except asyncpg.PostgresError as error:
            print(f"no PostgreSQL profile ({type(error).__name__}: {error})")
            await conn.close()
            return cls(None)
        return cls(conn)

    async def top(self, n: int = 5) -> list[tuple[str, float]]:
        """The `n` statements that took the most execution time, with their share of it."""
        if self._conn is None:
            return []
        try:
            rows = await self._conn.fetch(
                "SELECT calls, total_exec_time AS spent, sum(total_exec_time) OVER () AS whole, query "
                "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY total_exec_time DESC LIMIT $1",
                n,
            )
        finally:
            await self._conn.close()
        return [
            (
                f"{' '.join(row['query'].split())[:120]} ({row['calls']:,} calls)",
                round(100 * row["spent"] / row["whole"], 1),
            )
            for row in rows
        ]


def percentiles(name: str, seconds: list[float]) -> dict[str, int | None]:
    cuts = statistics.quantiles(seconds, n=100) if len(seconds) > 1 else None
    return {
        f"{name}p50_ms": round(cuts[49] * 1000) if cuts else None,
        f"{name}p99_ms": round(cuts[98] * 1000) if cuts else None,
    }


async def baseline(events: int, size: int) -> dict[str, Any]:
    """A bare consume-and-produce passthrough of `events` records of `size` bytes."""
    run = uuid.uuid4().hex[:8]
    source, sink = f"bench-passthrough-{run}-in", f"bench-passthrough-{run}-out"
    await create_topics(BOOTSTRAP, (source, sink))
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, **client_options())
    await admin.start()
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=5, **client_options()
        )
        await producer.start()
        value = b"x" * size
        await asyncio.gather(*[await producer.send(source, value, key=str(i).encode()) for i in range(events)])
        consumer = AIOKafkaConsumer(
            source,
            bootstrap_servers=BOOTSTRAP,
            group_id=f"passthrough-{run}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **client_options(),
        )
        await consumer.start()
        moved, started = 0, time.time()
        while moved < events:
            for records in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                await asyncio.gather(
                    *[await producer.send(sink, r.value, key=r.key, headers=r.headers) for r in records]
                )
                moved += len(records)
            await consumer.commit()
        elapsed = time.time() - started
        await consumer.stop()
        await producer.stop()
        return {"events": events, "seconds": round(elapsed, 2), "events_per_s": round(events / elapsed)}
    finally:
        await admin.delete_topics([source, sink])
        await admin.close()


def consumed(services: dict[str, Service]) -> dict[str, dict[str, float]]:
    """Per service: committed consumer batches, the records they held and the seconds they
    took (from /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for name, service in services.items():
        totals = {"batches": 0.0, "records": 0.0, "seconds": 0.0}
        for family in text_string_to_metric_families(httpx.get(f"{service.url}/metrics").text):
            for sample in family.samples:
                if sample.name == "support_consumer_batches_total":
                    totals["batches"] += sample.value
                elif sample.name == "faststream_received_messages_total":
                    totals["records"] += sample.value
                elif sample.name == "support_consumer_batch_duration_seconds_sum":
                    totals["seconds"] += sample.value
                elif sample.name == "support_kpi_refresh_duration_seconds":
                    totals["refresh_seconds"] = sample.value
        out[name] = totals
    return out


def cpu_now(services: dict[str, Service]) -> dict[str, float]:
    return {name: s.cpu_seconds() for name, s in services.items()} | platform_cpu() | {"bench": time.process_time()}


def batches(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per service between two `consumed` readings: records per batch, ms per batch."""
    out = {}
    for name in after:
        count = max(after[name]["batches"] - before[name]["batches"], 1)
        out[name] = {
            "records": round((after[name]["records"] - before[name]["records"]) / count, 1),
            "ms": round(1000 * (after[name]["seconds"] - before[name]["seconds"]) / count, 1),
        }
    return out


def table(*results: tuple[str, dict[str, Any]]) -> str:
    """One column per (label, result): the runs side by side."""
    columns = [dict(rows(result)) for _, result in results]
    header = "| measure | " + " | ".join(label for label, _ in results) + " |"
    lines = [header, "|---|" + "---|" * len(results)]
    lines += [f"| {name} | " + " | ".join(c.get(name, "—") for c in columns) + " |" for name in columns[0]]
    return "\n".join(lines)


def per_lifecycle(cpu_seconds: dict[str, float], lifecycles: int) -> str:
    used = sum(seconds for name, seconds in cpu_seconds.items() if name not in NOT_LADDER)
    return f"{1000 * used / max(lifecycles, 1):.2f}"


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    burst, steady, base = result["burst"], result["steady"], result["baseline"]
    rows = [
        ("complete lifecycles per second (burst, sustained)", f"{burst['lifecycles_per_s']:,}"),
        ("commands per second (3 per lifecycle)", f"{burst['commands_per_s']:,}"),
        ("events per second on support.ticket-events", f"{burst['events_per_s']:,}"),
        ("baseline: bare aiokafka passthrough, events per second", f"{base['events_per_s']:,}"),
        ("pipeline ÷ baseline (events per second)", f"{burst['events_per_s'] / base['events_per_s']:.2f}"),
        (
            f"create command → ticket.routed at {steady['rate_per_s']:g} lifecycles/s, p50 / p99",
            f"{steady.get('create_to_routed_p50_ms')} / {steady.get('create_to_routed_p99_ms')} ms",
        ),
        (
            "of which create command → ticket.created written (intake, relay), p50 / p99",
            f"{steady.get('create_to_created_p50_ms')} / {steady.get('create_to_created_p99_ms')} ms",
        ),
        (f"command → KPI latency at {steady['rate_per_s']:g} lifecycles/s, p50", f"{steady['p50_ms']} ms"),
        (f"command → KPI latency at {steady['rate_per_s']:g} lifecycles/s, p99", f"{steady['p99_ms']} ms"),
        (
            "of which command → ticket.resolved written (intake, relay), p50 / p99",
            f"{steady['command_to_event_p50_ms']} / {steady['command_to_event_p99_ms']} ms",
        ),
        (
            "of which ticket.resolved → KPI (metrics, refresh), p50 / p99",
            f"{steady['event_to_kpi_p50_ms']} / {steady['event_to_kpi_p99_ms']} ms",
        ),
    ]
    rows.append(("the last KPI refresh took (metrics)", f"{steady['kpi_refresh_ms']} ms"))
    rows += [
        ("CPU ms per lifecycle in the burst, all processes", per_lifecycle(burst["cpu_seconds"], burst["completed"])),
        (
            f"CPU ms per lifecycle at {steady['rate_per_s']:g} lifecycles/s, all processes",
            per_lifecycle(steady["cpu_seconds"], steady["counted"]),
        ),
    ]
    phases = ((burst, "in the burst"), (steady, f"at {steady['rate_per_s']:g} lifecycles/s"))
    rows += [
        (
            f"the machine {label}: busy / stolen by the hypervisor ({os.cpu_count()} cores)",
            f"{phase['machine']['busy_pct']}% / {phase['machine']['stolen_pct']}%",
        )
        for phase, label in phases
    ]
    for phase, label in phases:
        rows += [
            (f"consumer batch {label}: {name}", f"{b['records']:g} records, {b['ms']:g} ms")
            for name, b in phase["batches"].items()
        ]
    rows += [(f"peak RSS {name}", f"{rss['peak']} MiB") for name, rss in result["rss_mib"].items()]
    for phase, label in phases:
        rows += [
            (f"CPU seconds {label}: {CPU_NAMES.get(name, name)}", str(cpu))
            for name, cpu in phase["cpu_seconds"].items()
        ]
    return rows


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.broker_warmup:  # a fresh broker's JIT compiles for minutes: let it, before measuring
        await baseline(args.broker_warmup, 400)
    space = await Namespace("pipeline").open()
    try:
        result = await pipeline(args, space)
    finally:
        await space.close()
    result["baseline"] = await baseline(result["burst"]["events"], 400)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifecycles", type=int, default=20_000, help="lifecycles in the burst")
    parser.add_argument("--warmup", type=int, default=2_000, help="lifecycles before the burst, not measured")
    parser.add_argument(
        "--broker-warmup", type=int, default=200_000, help="passthrough records before anything, not measured"
    )
    parser.add_argument("--rate", type=float, default=500, help="lifecycles per second in the steady run")
    parser.add_argument("--seconds", type=int, default=20, help="length of the steady run")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--plaintext",
        metavar="HOST:PORT",
        help="then the same run again on this PLAINTEXT listener (no login, no TLS), and both side by side "
        "(var/bench/pipeline-plaintext.json): what the secured listener costs",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each service with py-spy in the burst and at the steady rate "
        "(var/bench/profile-pipeline-*.folded) and print the top five costs of each, PostgreSQL's five "
        "costliest statements (pg_stat_statements), and the machine's CPU by process and by library (perf)",
    )
    parser.add_argument("--out", type=Path, default=OUT / "pipeline.json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    runs = [(listener(BOOTSTRAP, os.environ), result)]
    if args.plaintext:
        runs.append((listener(args.plaintext, {}), plaintext_run(args)))
    print(table(*runs))
    for phase, profile in result.get("profile", {}).items():
        for name, costs in profile.items():
            of = (
                "the machine's samples, perf; py-spy is the profiler itself"
                if name.startswith("machine")
                else "its busy samples; PostgreSQL: of the statements' time"
            )
            print(f"\n{name}: top costs, {phase} (% of {of})")
            for frame, share in costs:
                print(f"  {share:5.1f}%  {frame}")


def listener(bootstrap: str, environ: Mapping[str, str]) -> str:
    protocol = environ.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
    mechanism = environ.get("KAFKA_SASL_MECHANISM") if protocol.startswith("SASL") else None
    return f"{protocol}{f' {mechanism}' if mechanism else ''} ({bootstrap})"


def plaintext_run(args: argparse.Namespace) -> dict[str, Any]:
    """The same bench in a process of its own whose every client (services, producers,
    baseline) speaks PLAINTEXT to `args.plaintext`; same database, same sizes."""
    out = OUT / "pipeline-plaintext.json"
    security = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
    files = ("KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE")
    env = {name: value for name, value in os.environ.items() if name not in security + files}
    env |= {"KAFKA_BOOTSTRAP_SERVERS": args.plaintext, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    command = [sys.executable, "-m", "bench", "pipeline", "--out", str(out)]
    command += [
        "--lifecycles",
        str(args.lifecycles),
        "--warmup",
        str(args.warmup),
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
    ]
    command += ["--timeout", str(args.timeout)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


if __name__ == "__main__":
    main()
