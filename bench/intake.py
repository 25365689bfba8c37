"""`python -m bench intake`: intake's throughput and latency on this machine, over HTTP and Kafka.

Runs intake as a real process against the platform that `make bench` started, drives it
with wrk and hey (HTTP, from Debian's packages) and an aiokafka producer (topic), and
reads the resulting events back to time them by their broker timestamps. Prints a table
and writes var/bench/intake.json. Numbers only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP, DATABASE_URL, ROOT
from services.intake.core.auth import hash_key
from shared import signing, topics
from shared.db import drop_schemas
from shared.kafka import client_options, commit_group_at_end, topic_partitions

KEY = "bench-" + uuid.uuid4().hex
# Its own rate limit far above what it sends: the bench measures throughput, not the limiter.
KEYS = json.dumps(
    {
        "keys": [
            {"name": "bench", "sha256": hash_key(KEY), "actions": ["create"], "rate_per_second": 1e6, "burst": 10**6}
        ]
    }
)


class Intake:
    """`replicas` intake processes in one consumer group (ports port, port+1, ...); the
    first one serves the HTTP benchmarks. Its new group starts at the topic's tail, and
    its schema is its own (each run starts from empty tables; `stop` drops it)."""

    def __init__(self, port: int, replicas: int = 1) -> None:
        self.url = f"http://127.0.0.1:{port}"
        log = ROOT / "var" / "bench" / "intake.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        run = uuid.uuid4().hex[:8]
        group, self.schema = f"bench-{run}", f"intake_bench_{run}"
        asyncio.run(commit_group_at_end(BOOTSTRAP, group, topics.TICKET_COMMANDS))
        self.procs = []
        for replica in range(replicas):
            env = {
                **os.environ,
                "INTAKE_API_KEYS": KEYS,
                "INTAKE_PORT": str(port + replica),
                "LOG_LEVEL": "WARNING",
                "INTAKE_CONSUMER_GROUP": group,
                "INTAKE_SCHEMA_NAME": self.schema,
            }
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.intake"],
                    cwd=ROOT,
                    env=env,
                    stdout=log.open("ab"),
                    stderr=subprocess.STDOUT,
                )
            )
            deadline = time.monotonic() + 60
            while (
                subprocess.run(
                    ["curl", "-sf", f"http://127.0.0.1:{port + replica}/readyz"], capture_output=True
                ).returncode
                != 0
            ):
                if self.procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"intake did not start; see {log}")
                time.sleep(0.3)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.procs[0].pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(30)
        asyncio.run(drop_schemas(DATABASE_URL, self.schema))


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise SystemExit(f"bench needs {tool}: apt-get install {tool}")


def wrk_max(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "create.lua"),
            f"{url}/v1/tickets",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_API_KEY": KEY},
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": rate,
        "p50": latency.get("50"),
        "p99": latency.get("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "connections": connections,
    }


def hey_at_rate(url: str, rate: int, seconds: int) -> dict:
    workers = 40  # each waits for its answer: enough of them to hold the rate at ~20 ms latency
    body = ROOT / "var" / "bench" / "ticket.json"
    body.write_text('{"customer_id":"bench","channel":"web","subject":"Benchmark ticket","intent":"bench"}')
    out = subprocess.run(
        [
            "hey",
            "-z",
            f"{seconds}s",
            "-c",
            str(workers),
            "-q",
            str(rate // workers),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-H",
            f"Authorization: Bearer {KEY}",
            "-D",
            str(body),
            f"{url}/v1/tickets",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    achieved = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    percentiles = {p: float(v) * 1000 for p, v in re.findall(r"(\d+)%+ in ([\d.]+) secs", out)}
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    return {
        "target_per_s": rate,
        "achieved_per_s": achieved,
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
        "statuses": statuses,
    }


async def kafka_run(count: int, rate: int | None) -> dict:
    """Publish `count` create commands (at `rate`/s, or as fast as possible) and time the events."""
    run = uuid.uuid4().hex[:8]
    partitions = await topic_partitions(BOOTSTRAP, topics.TICKET_EVENTS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, fetch_max_bytes=50 << 20, **client_options()
    )
    await consumer.start()
    consumer.assign(partitions)
    for tp, offset in (await consumer.end_offsets(partitions)).items():
        consumer.seek(tp, offset)

    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_batch_size=256 * 1024, **client_options()
    )
    await producer.start()
    sent_at: dict[int, float] = {}
    started = time.time()
    pending = []
    for i in range(count):
        value = orjson.dumps(
            {
                "type": "create_ticket",
                "customer_id": "bench",
                "channel": "api",
                "subject": f"bench {run} {i}",
                "intent": "bench",
            }
        )
        sent_at[i] = time.time()
        pending.append(
            await producer.send(
                topics.TICKET_COMMANDS,
                value,
                key=str(i).encode(),
                headers=signing.sign("bench", KEY, str(i).encode(), value),
            )
        )
        if rate and i % 100 == 99:
            ahead = started + (i + 1) / rate - time.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
    await asyncio.gather(*pending)
    published = time.time()
    await producer.stop()

    marker = f"bench {run} ".encode()
    latencies, last = [], 0.0
    deadline = time.time() + 120
    while len(latencies) < count and time.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
            for record in records:
                at = record.value.find(marker)
                if at < 0:
                    continue
                i = int(record.value[at + len(marker) :].split(b'"', 1)[0])
                latencies.append(record.timestamp / 1000 - sent_at[i])
                last = max(last, record.timestamp / 1000)
    await consumer.stop()
    latencies.sort()
    return {
        "commands": count,
        "events": len(latencies),
        "target_per_s": rate or "max",
        "published_per_s": round(count / (published - started)),
        "processed_per_s": round(len(latencies) / (last - started)) if latencies else 0,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--http-rate", type=int, default=1000)
    parser.add_argument("--kafka-count", type=int, default=100_000)
    parser.add_argument("--kafka-rate", type=int, default=5000)
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--kafka-replicas", type=int, default=1, help="intake processes in the consumer group")
    parser.add_argument("--only", choices=["http", "kafka"])
    args = parser.parse_args()
    need("wrk"), need("hey"), need("curl")

    results: dict = {"machine": {"cores": os.cpu_count()}}
    intake = Intake(args.port)
    try:
        if args.only != "kafka":
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-X", "POST", f"{intake.url}/v1/tickets"])  # warm up
            wrk_max(intake.url, 3, 32)
            results["http_max"] = wrk_max(intake.url, args.seconds, 64)
            results["http_at_rate"] = hey_at_rate(intake.url, args.http_rate, args.seconds)
        results["intake_rss_mib"] = round(intake.rss_mib(), 1)
    finally:
        intake.stop()
    if args.only != "http":
        for replicas in sorted({1, args.kafka_replicas}):
            intake = Intake(args.port, replicas)
            try:
                results[f"kafka_max_{replicas}_process"] = asyncio.run(kafka_run(args.kafka_count, None))
                results[f"kafka_at_rate_{replicas}_process"] = asyncio.run(
                    kafka_run(args.kafka_rate * args.seconds // 2, args.kafka_rate)
                )
            finally:
                intake.stop()
    out = ROOT / "var" / "bench" / "intake.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
