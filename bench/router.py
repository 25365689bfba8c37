"""`python -m bench.router`: routed tickets per second, one and two router processes, on the
real broker and database the platform runs.

For each process count: fresh prefixed topics and a private schema; the routers start and
join their group; then `--tickets` ticket.created events (a mix of every charter rule) are
published as fast as possible, and the routed events are read back. Throughput is first
routings over the span of their broker timestamps (first to last). CPU seconds of the router
processes (and of the local PostgreSQL and Kafka) say where the time went. Numbers only:
nothing here asserts a timing. Writes var/bench/router.json (and, with --profile, py-spy's
folded stacks of the first process, var/bench/profile-router-<n>.folded, and its top costs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP, OUT, ROOT, Namespace, Profiler, Service, platform_cpu
from shared import envelope as ce
from shared.emitters import emitter
from shared.events import Channel, Priority, TicketCreated
from shared.kafka import client_options, topic_partitions

CHARTER = ROOT / "tests" / "charters" / "burst.yaml"
INTENTS = ["login"] * 6 + ["billing", "data_loss", "crash", "refund_fraud"]  # L1, L2 / L3 jumps, shadow, triage


def created(i: int, run: str) -> ce.KafkaRecord:
    ticket_id = f"bench-{run}-{i}"
    now = datetime.now(UTC)
    event = TicketCreated(
        ticket_id=ticket_id,
        customer_id="bench",
        channel=Channel.API,
        subject="bench",
        intent=INTENTS[i % 10],
        priority=list(Priority)[i % 4],
        customer_blocked=i % 20 == 7,
        created_at=now,
    )
    return ce.encode(
        ce.Envelope(event=event, id=ce.new_id(), source=emitter(event.TYPE), time=now, correlation_id=ticket_id)
    )


class Routers:
    """`count` router processes in one consumer group on the namespace."""

    def __init__(self, count: int, space: Namespace, port: int, batch_size: int) -> None:
        env = {**space.env("router"), "LADDER_CHARTER": str(CHARTER), "ROUTER_BATCH_SIZE": str(batch_size)}
        self.services = [Service("router", env, port=port + i) for i in range(count)]

    def cpu(self) -> float:
        return sum(service.cpu_seconds() for service in self.services)

    def stop(self) -> None:
        for service in self.services:
            service.stop()


async def burst(topic: str, count: int, routers: Routers, settle_s: float) -> dict:
    run = uuid.uuid4().hex[:8]
    records = [created(i, run) for i in range(count)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, fetch_max_bytes=50 << 20, **client_options()
    )
    await consumer.start()
    partitions = await topic_partitions(BOOTSTRAP, topic)
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    await asyncio.sleep(settle_s)  # the consumer group settles before the burst
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_batch_size=512 * 1024, **client_options()
    )
    await producer.start()
    cpu_before, platform_before, started = routers.cpu(), platform_cpu(), time.time()
    pending = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in records]
    await asyncio.gather(*pending)
    published = time.time()
    await producer.stop()

    first_routed: list[int] = []
    created_at: list[int] = []
    assignments = 0
    deadline = time.time() + 300
    while len(first_routed) < count and time.time() < deadline:
        for batch in (await consumer.getmany(timeout_ms=500, max_records=20000)).values():
            for record in batch:
                kind = dict(record.headers)["ce_type"]
                if kind == b"ticket.created":
                    created_at.append(record.timestamp)
                elif b'"reason":"assignment"' in record.value:
                    assignments += 1
                else:
                    first_routed.append(record.timestamp)
    cpu = routers.cpu() - cpu_before
    platform = {name: round(used - platform_before[name], 2) for name, used in platform_cpu().items()}
    await consumer.stop()
    span = (max(first_routed) - min(first_routed)) / 1000 if first_routed else float("nan")
    return {
        "tickets": count,
        "routed": len(first_routed),
        "assignments_later": assignments,
        "published_per_s": round(count / (published - started)),
        "routed_per_s": round(len(first_routed) / span) if span else None,
        "first_created_to_last_routed_s": (
            round((max(first_routed) - min(created_at)) / 1000, 2) if first_routed else None
        ),
        "router_cpu_s": round(cpu, 2),
        "router_cpu_ms_per_ticket": round(cpu * 1000 / max(len(first_routed), 1), 3),
        "postgres_cpu_s": platform["postgres"],
        "kafka_cpu_s": platform["kafka"],
    }


def measure(processes: int, args: argparse.Namespace) -> dict:
    space = asyncio.run(Namespace("router").open())
    routers = Routers(processes, space, args.port, args.batch_size)
    profiler = None
    try:
        if args.profile:
            profiler = Profiler({"router": routers.services[0].proc.pid}, f"router-{processes}")
        return asyncio.run(burst(space.topics.events, args.tickets, routers, settle_s=3.0 * processes))
    finally:
        if profiler is not None:
            print(profiler.stop())
        routers.stop()
        asyncio.run(space.close())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=500, help="ROUTER_BATCH_SIZE")
    parser.add_argument("--port", type=int, default=18102)
    parser.add_argument("--profile", action="store_true", help="py-spy folded stacks of the first router process")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": {"cores": os.cpu_count()}, "charter": str(CHARTER.relative_to(ROOT))}
    for processes in args.processes:
        results[f"{processes}_process{'es' if processes > 1 else ''}"] = measure(processes, args)
    (OUT / "router.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
