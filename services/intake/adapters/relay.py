"""The outbox relay: publishes committed records to Kafka, in commit order, then deletes them.

Invariants:
1. A record is deleted only after the broker acknowledged it (`acks=all`). A crash in
   between re-publishes it with the same event id; consumers deduplicate by id.
2. One relay per database publishes (it holds a session advisory lock on its own
   connection; standbys wait), so records leave in `seq` order and one ticket's events
   keep their causal order on the partition.
3. `wake()` after each commit keeps latency low; polling covers rows that other replicas
   committed and rows left by a crash. A pass that found a partial batch waits `linger`
   before the next one, so under load each pass carries many records (a pass has fixed
   costs: two database round trips and a broker acknowledgement).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as CounterMetric

from shared.db import advisory_key, connect_options
from shared.partitioning import partition_for
from services.intake.adapters.store import decode_headers

log = logging.getLogger(__name__)
_LEADER_LOCK = advisory_key("ladder.intake.relay")


class OutboxRelay:
    def __init__(self, database_url: str, bootstrap_servers: str, registry: CollectorRegistry, *,
                 batch_size: int = 2000, poll_interval: float = 0.25, linger: float = 0.01) -> None:
        self._database_url = database_url
        self._bootstrap_servers = bootstrap_servers
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._linger = linger
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self.published = CounterMetric("support_intake_outbox_published_total",
                                 "Records the outbox relay published to Kafka.", ["topic"], registry=registry)
        self.pending = Gauge("support_intake_outbox_pending_records",
                             "Records committed but not yet published (as of the last relay pass).",
                             registry=registry)
        self.is_leader = Gauge("support_intake_outbox_relay_leader", "1 while this process publishes the outbox.",
                               registry=registry)

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers, client_id="ladder-intake-relay",
            acks="all", enable_idempotence=True, linger_ms=1, max_batch_size=512 * 1024,
        )
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name="intake-outbox-relay")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Publish what is committed (up to `drain_timeout`), then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, drain_timeout)
            except asyncio.TimeoutError:
                log.error("outbox not drained before shutdown; the next start publishes the rest")
        if self._producer is not None:
            await self._producer.stop()

    async def _run(self) -> None:
        pause = 0.2
        while not self._stopping:
            try:
                await self._lead()
                return
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("outbox relay interrupted, retrying", extra={"error": type(error).__name__, "pause_s": pause})
            except Exception:
                log.exception("outbox relay failed, retrying")
            self.is_leader.set(0)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self._database_url, **connect_options(self._database_url))
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):
                if self._stopping:
                    return
                await self._sleep()
            self.is_leader.set(1)
            while True:
                published = await self._publish_batch(conn)
                if published == self._batch_size:
                    continue
                if self._stopping and not published:
                    return
                if published:
                    await asyncio.sleep(self._linger)  # let the next pass carry more
                else:
                    await self._sleep()
        finally:
            self.is_leader.set(0)
            await conn.close()  # also releases the leader lock

    async def _sleep(self) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
        except asyncio.TimeoutError:
            pass
        self._wakeup.clear()

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        assert self._producer is not None
        rows = await conn.fetch(
            "SELECT seq, topic, key, value, headers FROM intake.outbox ORDER BY seq LIMIT $1",
            self._batch_size)
        self.pending.set(len(rows))
        if not rows:
            return 0
        await asyncio.gather(*[await self._send(topic, partition, records)
                               for (topic, partition), records in (await self._by_partition(rows)).items()])
        await conn.execute("DELETE FROM intake.outbox WHERE seq = ANY($1::bigint[])", [row["seq"] for row in rows])
        for topic, count in Counter(row["topic"] for row in rows).items():
            self.published.labels(topic).inc(count)
        return len(rows)

    async def _by_partition(self, rows: list[asyncpg.Record]) -> dict[tuple[str, int], list[asyncpg.Record]]:
        """Rows grouped by destination partition, in `seq` order within each (the partition
        every producer computes for the key: `shared.partitioning`)."""
        assert self._producer is not None
        groups: dict[tuple[str, int], list[asyncpg.Record]] = {}
        for row in rows:
            partitions = self._partitions.get(row["topic"])
            if partitions is None:
                partitions = self._partitions[row["topic"]] = sorted(await self._producer.partitions_for(row["topic"]))
            if row["key"] is None:
                partition = random.choice(partitions)
            else:
                partition = partitions[partition_for(row["key"], len(partitions))]
            groups.setdefault((row["topic"], partition), []).append(row)
        return groups

    async def _send(self, topic: str, partition: int, records: list[asyncpg.Record]) -> asyncio.Future[object]:
        """Send `records` as few batches as fit; the returned future covers all of them."""
        assert self._producer is not None
        sent = []
        batch = self._producer.create_batch()
        for row in records:
            while batch.append(key=row["key"], value=row["value"], timestamp=None,
                               headers=decode_headers(row["headers"])) is None:
                sent.append(await self._producer.send_batch(batch, topic, partition=partition))
                batch = self._producer.create_batch()
        sent.append(await self._producer.send_batch(batch, topic, partition=partition))
        return asyncio.gather(*sent)
