"""The simulator's check: the KPIs `/metrics` exports against the reference computation of
the same stream (simulator.truth), sample by sample, to the last digit."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from shared.envelope import EnvelopeError, decode
from shared.kafka import client_options, topic_partitions
from simulator.truth import PREDICTED, Event, Sample, expected_samples


class StreamCopy:
    """Every event of the topic, from its beginning, in partition order; `catch_up` reads
    what was appended since. Records that are no valid event are skipped, as every consumer
    dead-letters them."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.by_partition: dict[int, list[Event]] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def catch_up(self) -> list[Event]:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_bytes=50 << 20,
                **client_options(),
            )
            await self._consumer.start()
            partitions = await topic_partitions(self.bootstrap, self.topic)
            self._consumer.assign(partitions)
            await self._consumer.seek_to_beginning(*partitions)
        consumer = self._consumer
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for tp, records in (await consumer.getmany(timeout_ms=1000, max_records=20000)).items():
                for record in records:
                    try:
                        envelope = decode(record.key, record.value, record.headers)
                    except EnvelopeError:
                        continue
                    self.by_partition.setdefault(tp.partition, []).append(
                        Event(
                            envelope.id,
                            envelope.type,
                            envelope.ticket_id,
                            envelope.time,
                            envelope.event.model_dump(mode="json"),
                            envelope.cycle,
                        )
                    )
        return [event for partition in sorted(self.by_partition) for event in self.by_partition[partition]]

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def exported_samples(metrics_text: str) -> dict[Sample, float]:
    samples = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name in PREDICTED:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def differences(expected: dict[Sample, float], exported: dict[Sample, float]) -> list[str]:
    lines = []
    for key in sorted(set(expected) | set(exported)):
        want, got = expected.get(key), exported.get(key)
        if want != got:
            labels = ",".join(f"{k}={v}" for k, v in key[1])
            lines.append(f"{key[0]}{{{labels}}}: metrics {got!r}, truth {want!r}")
    return lines


async def check(metrics_url: str, stream: StreamCopy, *, within_s: float = 90.0) -> tuple[list[str], dict[str, Any]]:
    """Compare until the exported KPIs equal the truth of the stream (the pipeline may still
    be draining) or `within_s` passes; returns the differences left and the KPI document."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=metrics_url, timeout=30) as http:
        while True:
            events = await stream.catch_up()
            document = (await http.get("/v1/kpis")).json()
            computed_at = datetime.fromisoformat(document["computed_at"].replace("Z", "+00:00"))
            exported = exported_samples((await http.get("/metrics")).text)
            diff = differences(expected_samples(events, computed_at), exported)
            if not diff or time.monotonic() > deadline:
                return diff, document
            await asyncio.sleep(2)
