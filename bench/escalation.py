"""`python -m bench.escalation`: escalation's throughput and memory on this machine.

Runs escalation as a real process (the default charter) on topics and a schema of its own,
against the platform that is up (`make up`). Measures, and writes to
var/bench/escalation.json:
* handoffs decided per second: N handoff requests (two thirds complete, one third
  bounced) published at once onto tickets already routed to L1, timed from the first send
  to the broker timestamp of the last answer (decision, commit, relay, broker);
* the same with 1,000,000 pending SLA timers in the table, and the process' RSS before and
  after they were added (timers live in PostgreSQL: memory must stay flat), with the
  timer loop's two questions (earliest deadline, what is due) timed on that table;
* breaches fired per second: the bounced tickets' timers made due at once.
Numbers only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP, DATABASE_URL, ROOT, Namespace, Service
from services.escalation.adapters.store import EscalationStore
from shared import envelope as ce
from shared.emitters import emitter
from shared.events import (
    Channel,
    HandoffChecklist,
    Priority,
    RoutingReason,
    TicketCreated,
    TicketEscalationRequested,
    TicketRouted,
    Tier,
)
from shared.kafka import client_options, topic_partitions
from shared.topics import Topics

COMPLETE = HandoffChecklist(
    impact="one team", steps_attempted=["retried"], attachments=["req-1"], problem_statement="exports time out"
)


class Escalation(Service):
    def __init__(self, space: Namespace) -> None:
        super().__init__("escalation", space.env("escalation"))

    def metric(self, name: str) -> float:
        for line in httpx.get(f"{self.url}/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return float("nan")

    def rss_mib(self) -> float:
        return self.status("VmRSS")


def envelope(event, correlation: str, event_id: str | None = None) -> ce.Envelope:
    return ce.Envelope(
        event=event,
        id=event_id or ce.new_id(),
        source=emitter(event.TYPE),
        time=datetime.now(UTC),
        correlation_id=correlation,
    )


async def send(producer: AIOKafkaProducer, topic: str, envelopes: list[ce.Envelope]) -> None:
    for item in envelopes:
        record = ce.encode(item)
        await producer.send(topic, record.value, key=record.key, headers=record.headers)
    await producer.flush()


async def routed_tickets(producer: AIOKafkaProducer, topic: str, tag: str, n: int) -> list[tuple[str, str]]:
    """`n` tickets created and routed to L1: (ticket id, correlation id)."""
    tickets, batch = [], []
    for i in range(n):
        ticket, created = f"bench-{tag}-{i}", ce.new_id()
        batch.append(
            envelope(
                TicketCreated(
                    ticket_id=ticket,
                    customer_id="acme",
                    channel=Channel.WEB,
                    subject="s",
                    intent="how_to",
                    priority=Priority.P2,
                    customer_blocked=False,
                    created_at=datetime.now(UTC),
                ),
                created,
                created,
            )
        )
        batch.append(
            envelope(
                TicketRouted(ticket_id=ticket, tier=Tier.L1, queue="l1-general", reason=RoutingReason.RULE), created
            )
        )
        tickets.append((ticket, created))
    await send(producer, topic, batch)
    return tickets


async def wait_armed(pool: asyncpg.Pool, schema: str, tickets: list[tuple[str, str]]) -> None:
    ids = [ticket for ticket, _ in tickets]
    query = f"SELECT count(*) FROM {schema}.sla_timers WHERE ticket_id = ANY($1::text[])"
    while True:
        if await pool.fetchval(query, ids) >= 2 * len(ids):
            return
        await asyncio.sleep(0.5)


async def answers_after(topic: str, start: dict, wanted: set[str], kinds: set[bytes]) -> int:
    """Read from `start` until an answer of `kinds` arrived for every ticket in `wanted`;
    the broker timestamp (ms) of the last one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, **client_options())
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        missing, last = set(wanted), 0
        while missing:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if dict(r.headers).get("ce_type") in kinds and r.key.decode() in missing:
                        missing.discard(r.key.decode())
                        last = max(last, r.timestamp)
        return last
    finally:
        await consumer.stop()


async def end_offsets(topic: str) -> dict:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, **client_options())
    await consumer.start()
    try:
        return await consumer.end_offsets(await topic_partitions(BOOTSTRAP, topic))
    finally:
        await consumer.stop()


async def handoffs_per_second(producer, topics: Topics, pool, schema: str, tag: str, n: int) -> tuple[float, list]:
    tickets = await routed_tickets(producer, topics.events, tag, n)
    await wait_armed(pool, schema, tickets)
    start = await end_offsets(topics.events)
    requests = [
        envelope(
            TicketEscalationRequested(
                ticket_id=ticket,
                from_tier=Tier.L1,
                to_tier=Tier.L2,
                agent_id="ana",
                checklist=COMPLETE if i % 3 else HandoffChecklist(),
                hypothesis="the export job hits a timeout",
            ),
            correlation,
        )
        for i, (ticket, correlation) in enumerate(tickets)
    ]
    began = time.time()
    await send(producer, topics.events, requests)
    last = await answers_after(topics.events, start, {t for t, _ in tickets}, {b"ticket.escalated", b"ticket.bounced"})
    return n / (last / 1000 - began), [t for i, (t, _) in enumerate(tickets) if i % 3 == 0]


async def add_pending_timers(pool: asyncpg.Pool, schema: str, count: int) -> None:
    """`count` pending timers due in a month or later, on `count // 2` L1 tickets (spread
    over the 6 partitions; none of them is on the stream)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            f"INSERT INTO {schema}.tickets SELECT 'idle-' || n, 'c-' || n, 'P3', 'how_to', false, 'L1', 'L1', "
            "'idle-routed-' || n, NULL FROM generate_series(1, $1::int) AS n",
            count // 2,
        )
        await conn.execute(
            f"INSERT INTO {schema}.sla_timers (armed_by, kind, ticket_id, tier, due_at, state, partition) "
            "SELECT 'idle-routed-' || n, kind, 'idle-' || n, 'L1', now() + interval '30 days' + n * interval '1 s', "
            "'pending', n % 6 FROM generate_series(1, $1::int) AS n, "
            "unnest(ARRAY['first_response', 'time_in_tier']) AS kind",
            count // 2,
        )
    await pool.execute(f"ANALYZE {schema}.sla_timers")


async def query_ms(pool: asyncpg.Pool, statement: str, *args: object) -> float:
    samples = []
    for _ in range(20):
        began = time.perf_counter()
        await pool.fetch(statement, *args)
        samples.append((time.perf_counter() - began) * 1000)
    return sorted(samples)[len(samples) // 2]


async def run(args: argparse.Namespace) -> dict:
    space = await Namespace("escalation").open()
    topics, schema = space.topics, space.schemas["escalation"]
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2)
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, enable_idempotence=True, **client_options()
    )
    await producer.start()
    service = Escalation(space)
    result: dict = {"handoffs": args.handoffs, "pending_timers": args.timers}
    try:
        result["handoffs_per_s"], _ = await handoffs_per_second(producer, topics, pool, schema, "a", args.handoffs)
        result["rss_mib_before_timers"] = service.rss_mib()

        await add_pending_timers(pool, schema, args.timers)
        await asyncio.sleep(12)  # the loop samples the pending count every 10 s
        result["pending_timers_gauge"] = service.metric("support_escalation_sla_timers_pending")
        result["rss_mib_with_timers"] = service.rss_mib()
        store, partitions = EscalationStore(schema), list(range(6))  # one replica owns every partition
        result["next_due_query_ms"] = await query_ms(pool, store._next_due, partitions)
        result["due_query_ms"] = await query_ms(pool, store._claim, partitions, [datetime.now(UTC)] * 6, 500)

        rate, bounced = await handoffs_per_second(producer, topics, pool, schema, "b", args.handoffs)
        result["handoffs_per_s_with_timers"] = rate
        result["rss_mib_after"] = service.rss_mib()

        start = await end_offsets(topics.events)
        await pool.execute(
            f"UPDATE {schema}.sla_timers SET due_at = now() - interval '1 s' "
            "WHERE ticket_id = ANY($1::text[]) AND state = 'pending'",
            bounced,
        )
        began = time.time()
        await pool.execute("SELECT pg_notify($1, $2)", f"{schema}_sla_timers", datetime.now(UTC).isoformat())
        last = await answers_after(topics.events, start, set(bounced), {b"ticket.escalated"})
        result["breaches_fired_per_s"] = 2 * len(bounced) / (last / 1000 - began)
        result["rss_mib_end"] = service.rss_mib()
    finally:
        service.stop()
        await producer.stop()
        await pool.close()
        await space.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.escalation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--handoffs", type=int, default=20_000, help="handoff requests per round (default 20000)")
    parser.add_argument("--timers", type=int, default=1_000_000, help="pending timers added (default 1000000)")
    result = asyncio.run(run(parser.parse_args()))
    out = ROOT / "var" / "bench" / "escalation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    for name, value in result.items():
        print(f"{name:<{width}}  {value:,.1f}" if isinstance(value, float) else f"{name:<{width}}  {value:,}")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
