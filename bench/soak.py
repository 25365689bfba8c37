"""`make soak`: a long run of the whole pipeline, to see what the tables hold afterwards.

The four services run as processes on a private namespace (as `make bench`); `SOAK_TICKETS`
(default 1,000,000) lifecycles go through them: a create on the commands topic, and once
router routes the ticket to L1, the L1 agent's response and resolution. It prints the row
count and size (`pg_total_relation_size`) of every table of every service's schema before,
after the run, and after pruning as if the retention had passed (`prune` at now + the
retention + a day, with each service's own rules): what stays is the per-ticket state and the
durations the `all` quantiles rank. Each service's RSS is printed as the run goes, and its
peak at the end: memory should stay flat. Writes var/bench/soak.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP, DATABASE_URL, OUT, ROOT, Namespace, Service
from bench.pipeline import CHARTER, SERVICES, Kpis, agent_commands, send_creates, signed
from services.escalation.adapters.store import retention_rules as escalation_rules
from services.intake.adapters.store import retention_rules as intake_rules
from services.metrics.adapters.store import retention_rules as metrics_rules
from services.metrics.core.retention import LONGEST_WINDOW, MARGIN
from shared.db import connect_options, create_pool
from shared.kafka import client_options, topic_partitions
from shared.retention import DEFAULT_DAYS, Rule, kit_rules, prune
from shared.topics import Topics

RULES = {"intake": intake_rules, "router": kit_rules, "escalation": escalation_rules, "metrics": metrics_rules}


async def tables(schemas: dict[str, str]) -> dict[str, dict[str, dict[str, int]]]:
    """Per service, per table: rows and bytes (table, indexes and TOAST)."""
    conn = await asyncpg.connect(DATABASE_URL, **connect_options(DATABASE_URL))
    try:
        found: dict[str, dict[str, dict[str, int]]] = {}
        for service, schema in schemas.items():
            names = [
                row[0]
                for row in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema
                )
            ]
            found[service] = {
                name: {
                    "rows": await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"'),
                    "bytes": await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", f'"{schema}"."{name}"'),
                }
                for name in names
            }
        return found
    finally:
        await conn.close()


async def agents(producer: AIOKafkaProducer, topics: Topics) -> None:
    """The L1 agents: on a ticket's first routing (by rule) to L1, a response and the fix.
    Read without a group from the start, so each routing is seen once."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, fetch_max_wait_ms=50, **client_options()
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(BOOTSTRAP, topics.events)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for record in records:
                    if dict(record.headers).get("ce_type") != b"ticket.routed" or record.key is None:
                        continue
                    if b'"reason":"rule"' not in (record.value or b""):
                        continue
                    for command in agent_commands(record.key.decode()):
                        await producer.send(
                            topics.commands, command, key=record.key, headers=signed(record.key, command)
                        )
    finally:
        await consumer.stop()


async def prune_as_if_later(schemas: dict[str, str], days: float) -> dict[str, dict[str, int]]:
    """Each service's pruning at now + `days`: what retention leaves of this run."""
    later = datetime.now(UTC) + timedelta(days=days)
    keep = timedelta(days=DEFAULT_DAYS)
    pool = await create_pool(DATABASE_URL, max_size=2)
    try:
        removed = {}
        for service, schema in schemas.items():
            rules: list[Rule] = RULES[service](keep)
            removed[service] = await prune(pool, schema, rules, later)
        return removed
    finally:
        await pool.close()


async def vacuum(schemas: dict[str, str]) -> None:
    """What autovacuum would do in time: empty trailing pages go back to the file system."""
    conn = await asyncpg.connect(DATABASE_URL, **connect_options(DATABASE_URL))
    try:
        for schema in schemas.values():
            for (name,) in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema):
                await conn.execute(f'VACUUM "{schema}"."{name}"')
    finally:
        await conn.close()


def table(label: str, sizes: dict[str, dict[str, dict[str, int]]]) -> str:
    lines = [f"\n{label}", "| service | table | rows | size |", "|---|---|---:|---:|"]
    for service, found in sizes.items():
        for name, size in found.items():
            lines.append(f"| {service} | {name} | {size['rows']:,} | {size['bytes'] / 1024 / 1024:,.1f} MiB |")
    return "\n".join(lines)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    space = await Namespace("soak").open()
    env = {
        "LADDER_CHARTER": str(CHARTER),
        "INTAKE_API_KEYS_FILE": str(ROOT / "deploy/local/api-keys.json"),
        "METRICS_REFRESH_INTERVAL_S": "1",
    }
    result: dict[str, Any] = {"tickets": args.tickets}
    services: dict[str, Service] = {}
    try:
        services = {name: Service(name, {**env, **space.env(name)}) for name in SERVICES}
        result["before"] = await tables(space.schemas)
        print(table("before", result["before"]), flush=True)
        producer = AIOKafkaProducer(
            bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_batch_size=256 * 1024, **client_options()
        )
        await producer.start()
        kpis = Kpis(services["metrics"].url)
        kpis.start()
        l1 = asyncio.create_task(agents(producer, space.topics))
        result["rss_mib"] = []  # per service, as the run goes: flat memory is one of the soak's findings
        started = time.time()
        try:
            run = uuid.uuid4().hex[:8]
            for chunk in range(0, args.tickets, args.chunk):  # bounded: the services keep up
                await send_creates(
                    producer, space.topics.commands, run, range(chunk, min(chunk + args.chunk, args.tickets)), None
                )
                while kpis.count() < chunk - args.chunk and time.time() - started < args.timeout:  # noqa: ASYNC110
                    await asyncio.sleep(1)
                rss = {name: round(service.status("VmRSS"), 1) for name, service in services.items()}
                result["rss_mib"].append({"resolved": kpis.count(), **rss})
                print(
                    f"sent {min(chunk + args.chunk, args.tickets):,}; resolved {kpis.count():,}; RSS MiB {rss}",
                    flush=True,
                )
            while kpis.count() < args.tickets and time.time() - started < args.timeout:  # noqa: ASYNC110
                await asyncio.sleep(1)
        finally:
            l1.cancel()
            kpis.stop()
            await producer.stop()
        result["resolved"] = kpis.count()
        result["peak_rss_mib"] = {name: round(service.status("VmHWM"), 1) for name, service in services.items()}
        print(f"peak RSS MiB {result['peak_rss_mib']}")
        result["seconds"] = round(time.time() - started, 1)
        result["after"] = await tables(space.schemas)
        print(f"\n{result['resolved']:,} of {args.tickets:,} tickets resolved in {result['seconds']} s")
        print(table("after the run", result["after"]))
        for service in services.values():
            service.stop()
        services = {}
        later = max(DEFAULT_DAYS, LONGEST_WINDOW.days + MARGIN.days) + 1
        result["pruned"] = await prune_as_if_later(space.schemas, later)
        await vacuum(space.schemas)
        result["after_retention"] = await tables(space.schemas)
        print(
            table(
                f"after pruning as of now + {later:g} days and VACUUM (freed pages are reused, not returned)"
                f"; rows removed: {result['pruned']}",
                result["after_retention"],
            )
        )
    finally:
        for service in services.values():
            service.stop()
        if not args.keep:
            await space.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=int(os.environ.get("SOAK_TICKETS", "1000000")))
    parser.add_argument("--chunk", type=int, default=20_000, help="creates sent ahead of the resolutions, at most")
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument("--keep", action="store_true", help="keep the topics and schemas for a look afterwards")
    args = parser.parse_args()
    result = asyncio.run(soak(args))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
