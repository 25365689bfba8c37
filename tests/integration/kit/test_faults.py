"""Systemic faults on the real broker and database (through the echo service, and router's
and metrics' periodic work): a fault that fails every record pauses the consumer, reports
not ready naming the cause, logs once per backoff step, dead-letters nothing, and resumes by
itself once healed, with every record processed once."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest

from tests.integration.kit.test_consumer import created, dlq

pytestmark = pytest.mark.usefixtures("platform")


async def send_all(producer, topic: str, unique: str, count: int, tag: str) -> list[str]:
    ids = []
    for i in range(count):
        record = created(f"{tag}-{unique}-{i}")
        ids.append(dict(record.headers)["ce_id"].decode())
        await producer.send(topic, record.value, key=record.key, headers=record.headers)
    await producer.flush()
    return ids


async def wait_not_ready(client, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get("/readyz")
        if response.status_code == 503:
            return response.json()
        await asyncio.sleep(0.2)
    raise AssertionError("still ready")


async def wait_ready(client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (response := await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, response.json()
        await asyncio.sleep(0.2)


def stall_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def check_stalls_then_heals(echo, echo_topics, producer, outputs, dead_letters, unique, caplog, heal):
    """Shared body: 400 events while the fault is in place, then the fault healed."""
    _, client = echo
    source = echo_topics[0]
    caplog.set_level(logging.WARNING)
    caplog.clear()
    ids = await send_all(producer, source, unique, 400, "fault")
    body = await wait_not_ready(client)
    await asyncio.sleep(6)  # several backoff steps (1 s, 2 s, 4 s ...)
    body = (await client.get("/readyz")).json()
    metrics = (await client.get("/metrics")).text
    assert body["checks"]["consumers"] is False
    lines = stall_lines(caplog)
    assert outputs.records == []  # nothing committed: no effect, no echo
    await heal()
    await outputs.wait_for(lambda rs: len(rs) >= len(ids), timeout=90)
    await wait_ready(client)
    await outputs.settle(1.0)
    await dead_letters.settle(0.5)
    assert sorted(r.value.decode() for r in outputs.records) == sorted(ids)  # each once
    assert [r for r in dead_letters.records if dlq(r, "dlq_source_topic") == source] == []
    assert 'support_stalled{part="consumer ' + source + '"} 1.0' in metrics
    assert 'support_stalled{part="consumer ' + source + '"} 0.0' in (await client.get("/metrics")).text
    # one line per backoff step and member (2 members, steps 1+2+4 s in ~7 s), never one per record
    assert 1 <= len(lines) <= 12, [r.getMessage() for r in lines]
    assert all(r.exc_info is None for r in lines)
    return body


async def test_a_bug_that_fails_every_record_stalls_instead_of_dead_lettering(
    echo, echo_topics, producer, outputs, dead_letters, unique, caplog
):
    app, _ = echo

    async def fix_the_deploy():
        app.state.echo.bug = None

    app.state.echo.bug = KeyError("a handler bug after a deploy")
    body = await check_stalls_then_heals(
        echo, echo_topics, producer, outputs, dead_letters, unique, caplog, fix_the_deploy
    )
    assert body["causes"]["consumers"] == "systemic: KeyError"


@pytest.mark.parametrize(
    ("fault", "heal", "cause"),
    [
        (
            "REVOKE INSERT, UPDATE, DELETE ON {schema}.applied FROM CURRENT_USER",
            "GRANT INSERT, UPDATE, DELETE ON {schema}.applied TO CURRENT_USER",
            "systemic: InsufficientPrivilegeError (42501)",
        ),
        (
            "ALTER TABLE {schema}.applied RENAME TO applied_gone",
            "ALTER TABLE {schema}.applied_gone RENAME TO applied",
            "systemic: UndefinedTableError (42P01)",
        ),
    ],
    ids=["revoked-privilege", "missing-table"],
)
async def test_database_faults_that_fail_every_record_stall_and_heal(
    platform, echo, echo_topics, producer, outputs, dead_letters, unique, caplog, fault, heal, cause
):
    schema = f"kit_{unique}"
    conn = await asyncpg.connect(platform.database_url)
    try:
        await conn.execute(fault.format(schema=schema))

        async def heal_it():
            await conn.execute(heal.format(schema=schema))

        body = await check_stalls_then_heals(
            echo, echo_topics, producer, outputs, dead_letters, unique, caplog, heal_it
        )
    finally:
        await conn.close()
    assert body["causes"]["consumers"] == cause


async def test_one_poison_record_among_good_ones_is_still_dead_lettered_alone(
    echo, echo_topics, producer, outputs, dead_letters, unique
):
    """The other side of the rule: a record that fails while its neighbours do not is poison."""
    _, client = echo
    source = echo_topics[0]
    good = await send_all(producer, source, unique, 50, "good")
    bad = created(f"reject-me-{unique}")  # the echo's table refuses this ticket id (a CHECK)
    await producer.send(source, bad.value, key=bad.key, headers=bad.headers)
    more = await send_all(producer, source, unique, 50, "more")
    await outputs.wait_for(lambda rs: len(rs) >= 100, timeout=60)
    await dead_letters.wait_for(lambda rs: any(dlq(r, "dlq_source_topic") == source for r in rs), timeout=30)
    (dead,) = [r for r in await dead_letters.settle(1.0) if dlq(r, "dlq_source_topic") == source]
    assert sorted(r.value.decode() for r in outputs.records) == sorted(good + more)
    assert dlq(dead, "dlq_reason") == "processing failed: CheckViolationError (23514)"
    assert (await client.get("/readyz")).status_code == 200
