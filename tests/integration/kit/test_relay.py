"""The kit's outbox relay on the real broker: a standby takes over from a killed leader, a
record the broker refuses is quarantined, and records for a topic the broker lacks wait;
neither holds back the records behind it; the leader vacuums the outbox it empties; a pass
runs when a commit woke the relay, not after every pass."""

import asyncio
import uuid

import asyncpg
import httpx
from prometheus_client import CollectorRegistry

from shared.db import drop_schemas
from shared.delivery.metrics import DeliveryMetrics
from shared.delivery.outbox import encode_headers
from shared.delivery.relay import OutboxRelay
from shared.service import migrate
from shared.topics import Topics
from tests.integration.kit.conftest import echo_env, running_echo
from tests.kafka_tools import TopicReader, private_topics
from tests.processes import ServiceProcess


async def stage(database_url, schema, topic, values, key=b"same-ticket"):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            f'INSERT INTO "{schema}".outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)',
            [(topic, key, value, encode_headers([("n", str(i).encode())])) for i, value in enumerate(values)],
        )
    finally:
        await conn.close()


async def outbox_left(database_url, schema):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox')
    finally:
        await conn.close()


async def outbox_reaches(database_url, schema, count, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while (left := await outbox_left(database_url, schema)) != count:
        assert asyncio.get_running_loop().time() < deadline, f"{left} records in the outbox, expected {count}"
        await asyncio.sleep(0.2)


def leader(process):
    return "support_outbox_relay_leader 1.0" in httpx.get(f"{process.url}/metrics").text


async def test_a_standby_takes_over_from_a_killed_leader(platform, echo_topics, outputs, unique):
    env = echo_env(unique, *echo_topics)
    schema = f"kit_{unique}"
    first = ServiceProcess("echo", env, module="tests.kit.echo").start()
    second = None
    try:
        await asyncio.sleep(1)
        assert leader(first)
        second = ServiceProcess("echo", env, module="tests.kit.echo").start()
        await asyncio.sleep(1)
        assert not leader(second)  # one relay per service publishes; the other stands by
        first.kill()
        values = [f"after-kill-{i}".encode() for i in range(1000)]
        await stage(platform.database_url, schema, echo_topics[1], values)
        await outputs.wait_for(lambda rs: len(rs) >= len(values), timeout=30)
        await outputs.settle(1.0)
        assert [r.value for r in outputs.records] == values  # all of them, once, in order
        assert leader(second)
        assert await outbox_left(platform.database_url, schema) == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
        await drop_schemas(platform.database_url, schema)


async def test_a_refused_record_is_quarantined_and_the_rest_go_on(platform, echo_topics, outputs, unique):
    env = echo_env(unique, *echo_topics)
    schema = f"kit_{unique}"
    try:
        async with running_echo(env) as (_, client):
            values = [b"before-1", b"before-2", b"x" * (5 * 1024 * 1024), b"after-1", b"after-2"]
            await stage(platform.database_url, schema, echo_topics[1], values)
            await outputs.wait_for(lambda rs: len(rs) >= 4, timeout=30)
            more = [f"later-{i}".encode() for i in range(3)]  # the relay still works afterwards
            await stage(platform.database_url, schema, echo_topics[1], more)
            await outputs.wait_for(lambda rs: len(rs) >= 7, timeout=30)
            await outputs.settle(1.0)
            assert [r.value for r in outputs.records] == [*values[:2], *values[3:], *more]
            conn = await asyncpg.connect(platform.database_url)
            try:
                parked = await conn.fetch(f'SELECT length(value) AS size, reason FROM "{schema}".outbox_quarantine')
            finally:
                await conn.close()
            assert [(row["size"], row["reason"]) for row in parked] == [(5 * 1024 * 1024, "MessageSizeTooLargeError")]
            metrics = (await client.get("/metrics")).text
            assert "support_outbox_quarantined_total 1.0" in metrics
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await drop_schemas(platform.database_url, schema)


async def test_records_for_a_topic_the_broker_lacks_wait_and_hold_nothing_back(platform, echo_topics, outputs, unique):
    """More of them than a pass reads, ahead of the rest: the rest still go at once; they
    stay in the outbox (nothing dropped) and go, in order, once the topic exists."""
    env = echo_env(unique, *echo_topics)
    schema = f"kit_{unique}"
    later = f"t-{uuid.uuid4().hex[:10]}."
    missing = Topics.prefixed(later).events
    waiting = [f"waiting-{i}".encode() for i in range(2500)]  # the relay reads 2000 a pass
    try:
        async with running_echo(env):
            await stage(platform.database_url, schema, missing, waiting)
            values = [f"meanwhile-{i}".encode() for i in range(5)]
            await stage(platform.database_url, schema, echo_topics[1], values)
            await outputs.wait_for(lambda rs: len(rs) >= len(values), timeout=30)
            assert [r.value for r in outputs.records] == values
            await outbox_reaches(platform.database_url, schema, len(waiting))  # deleted after the broker's ack
            async with (
                private_topics(platform.kafka_bootstrap_servers, prefix=later),
                TopicReader(platform.kafka_bootstrap_servers, missing, from_start=True) as arrived,
            ):
                await arrived.wait_for(lambda rs: len(rs) >= len(waiting), timeout=60)
                await arrived.settle(1.0)
                assert [r.value for r in arrived.records] == waiting
                await outbox_reaches(platform.database_url, schema, 0)
    finally:
        await drop_schemas(platform.database_url, schema)


async def test_the_leader_vacuums_the_outbox_it_empties(platform, echo_topics, outputs, unique):
    """Each pass reads the head of the outbox's `seq` index; without a vacuum it walks every
    row published since the last autovacuum (about a minute of traffic) to find its own."""
    env = echo_env(unique, *echo_topics)
    schema = f"kit_{unique}"
    try:
        async with running_echo(env):
            values = [f"r{i}".encode() for i in range(10_500)]  # more than the relay's 10,000 between vacuums
            await stage(platform.database_url, schema, echo_topics[1], values)
            await outputs.wait_for(lambda rs: len(rs) >= len(values), timeout=60)
            await outbox_reaches(platform.database_url, schema, 0)
            conn = await asyncpg.connect(platform.database_url)
            try:
                deadline = asyncio.get_running_loop().time() + 10
                while True:  # statistics reach pg_stat_user_tables within about a second
                    row = await conn.fetchrow(
                        "SELECT vacuum_count, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 "
                        "AND relname = 'outbox'",
                        schema,
                    )
                    if row["vacuum_count"] >= 1 or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.5)
            finally:
                await conn.close()
            assert row["vacuum_count"] >= 1
            assert row["n_dead_tup"] < 10_000
    finally:
        await drop_schemas(platform.database_url, schema)


async def test_a_pass_runs_when_a_commit_woke_the_relay_not_after_every_pass(platform, echo_topics, outputs, unique):
    """After a pass that published, the relay waits for the next wake (or its poll): a pass
    right after would read an empty outbox, once per consumer batch."""
    schema = f"kit_{unique}"
    pool = await asyncpg.create_pool(platform.database_url, min_size=1, max_size=2)
    passes: list[int] = []
    looked = asyncio.Event()

    class Counted(OutboxRelay):
        async def _pass(self, conn: asyncpg.Connection) -> int:
            passes.append(await super()._pass(conn))
            looked.set()
            return passes[-1]

    relay = Counted(
        service="echo",
        schema=schema,
        database_url=platform.database_url,
        bootstrap_servers=platform.kafka_bootstrap_servers,
        metrics=DeliveryMetrics(CollectorRegistry()),
        poll_interval=60,  # no poll during the test: every pass is the start's or a wake's
    )
    try:
        await migrate(pool, schema, None)
        await relay.start()
        await asyncio.wait_for(looked.wait(), 30)  # the leader's first look at the (empty) outbox
        for n in range(1, 4):  # a consumer batch commits a record and wakes the relay
            await stage(platform.database_url, schema, echo_topics[1], [f"batch-{n}".encode()])
            relay.wake()
            await outputs.wait_for(lambda rs, n=n: len(rs) >= n, timeout=30)
        await asyncio.sleep(1)
        assert passes == [0, 1, 1, 1]  # the leader's first look, then one pass per wake
    finally:
        await relay.stop()
        await pool.close()
        await drop_schemas(platform.database_url, schema)
