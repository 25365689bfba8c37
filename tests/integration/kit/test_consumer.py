"""The kit's consumer on the real broker (through the echo service): poison of every kind
among thousands of valid events on every partition; failures that are not transient;
duplicates and stale events."""

import asyncio
from datetime import UTC, datetime

import asyncpg

from shared import envelope as ce
from shared.emitters import emitter
from shared.events import TicketResolved, TicketResponded, Tier
from tests.builders import ticket_created
from tests.integration.kit.conftest import PARTITIONS


def created(ticket_id: str, event_id: str | None = None) -> ce.KafkaRecord:
    event = ticket_created(ticket_id, datetime(2026, 11, 24, tzinfo=UTC))
    return ce.encode(
        ce.Envelope(
            event=event,
            id=event_id or ce.new_id(),
            source=emitter(event.TYPE),
            time=datetime.now(UTC),
            correlation_id="c",
        )
    )


def follow_up(event, event_id: str | None = None) -> ce.KafkaRecord:
    return ce.encode(
        ce.Envelope(
            event=event,
            id=event_id or ce.new_id(),
            source=emitter(event.TYPE),
            time=datetime.now(UTC),
            correlation_id="c",
        )
    )


def dlq(record, name):
    return dict(record.headers)[name].decode()


async def applied_rows(database_url, schema):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(f'SELECT event_id, ticket_id, event_type FROM "{schema}".applied')
    finally:
        await conn.close()


async def test_poison_of_every_kind_among_thousands_of_valid_events(
    platform, echo, echo_topics, producer, outputs, dead_letters, unique
):
    source = echo_topics[0]
    sent: list = []

    async def send(record, key=..., headers=None, value=...):
        sent.append(
            await producer.send(
                source,
                record.value if value is ... else value,
                key=record.key if key is ... else key,
                headers=record.headers if headers is None else headers,
            )
        )

    valid: dict[str, str] = {}  # event id -> what it is
    for i in range(3000):
        record = created(f"t-{unique}-{i}")
        valid[dict(record.headers)["ce_id"].decode()] = "plain"
        await send(record)
    lock_names = [
        "relay:intake",
        "migrate:intake",
        "ladder.intake.relay",
        f"relay:kit_{unique}",
        f"migrate:kit_{unique}",
        f"kit_{unique}:ticket",
    ]
    for name in lock_names:  # ids that look like internal lock names are just ids
        record = created(name, event_id=f"relay:kit_{unique}" if name == lock_names[0] else None)
        valid[dict(record.headers)["ce_id"].decode()] = f"lock-like {name}"
        await send(record)
    for label, extra in [
        ("null header", ("trace", None)),
        ("NUL in header name", ("x\x00y", b"1")),
        ("binary header", ("bin", b"\xff\xfe\x00")),
    ]:
        record = created(f"odd-{unique}-{label.replace(' ', '-')}")
        valid[dict(record.headers)["ce_id"].decode()] = label
        await send(record, headers=[*record.headers, extra])

    good = created(f"bad-{unique}")
    without = [(n, v) for n, v in good.headers if n != "ce_id"]
    binary_source = [(n, b"\xff\xfe" if n == "ce_source" else v) for n, v in good.headers]
    bad = [
        ("null ce_id", dict(headers=[*without, ("ce_id", None)]), "missing header ce_id"),
        ("binary ce_source", dict(headers=binary_source), "header ce_source is not UTF-8"),
        ("2 MB key", dict(key=b"k" * 2_000_000), "record key does not match body ticket_id"),
        (
            "garbage body, NUL header name",
            dict(value=b"\x00\xffgarbage", headers=[*good.headers, ("a\x00b", None)]),
            "invalid ticket.created body",
        ),
        (
            "unknown type",
            dict(headers=[(n, b"ticket.teleported" if n == "ce_type" else v) for n, v in good.headers]),
            "unknown ce_type",
        ),
        ("no headers", dict(headers=[]), "missing header ce_specversion"),
        ("null value", dict(value=None), "invalid ticket.created body"),
    ]
    first_bad = len(sent)
    for _, changes, _ in bad:
        await send(good, **changes)
    await producer.flush()
    metas = [await future for future in sent]
    assert {meta.partition for meta in metas} == set(range(PARTITIONS))

    try:
        echoed = await outputs.wait_for(lambda rs: len({r.value.decode() for r in rs}) >= len(valid), timeout=60)
    except AssertionError:
        print("MISSING", [valid[i] for i in set(valid) - {r.value.decode() for r in outputs.records}])
        raise
    positions = {
        (meta.partition, meta.offset): label for meta, (label, _, _) in zip(metas[first_bad:], bad, strict=True)
    }

    def mine(rs):
        return [r for r in rs if dlq(r, "dlq_source_topic") == source]

    await dead_letters.wait_for(lambda rs: len(mine(rs)) >= len(bad), timeout=60)
    await asyncio.sleep(2)
    await outputs.settle(1.0)
    await dead_letters.settle(0.5)

    assert sorted(r.value.decode() for r in echoed) == sorted(valid)  # every valid event exactly once
    rows = await applied_rows(platform.database_url, f"kit_{unique}")
    assert sorted(row["event_id"] for row in rows) == sorted(valid)
    dead = {
        (int(dlq(r, "dlq_source_partition")), int(dlq(r, "dlq_source_offset"))): r for r in mine(dead_letters.records)
    }
    assert len(mine(dead_letters.records)) == len(bad)  # every bad record exactly once
    for meta, (label, changes, reason) in zip(metas[first_bad:], bad, strict=True):
        record = dead[(meta.partition, meta.offset)]
        assert reason in dlq(record, "dlq_reason"), label
        assert dlq(record, "dlq_code") == "invalid_event"
        assert dlq(record, "dlq_service") == "echo"
        assert record.key == changes.get("key", good.key), label  # verbatim, the 2 MB key too
        assert record.value == changes.get("value", good.value), label
        original = changes.get("headers", good.headers)
        assert [h for h in record.headers if not h[0].startswith("dlq_")] == list(original), label
    assert positions  # every bad record was located by its source position

    # ... and the consumer keeps going
    last = created(f"after-{unique}")
    await producer.send_and_wait(source, last.value, key=last.key, headers=last.headers)
    await outputs.wait_for(lambda rs: any(r.value == dict(last.headers)["ce_id"] for r in rs))


async def test_a_failure_that_is_not_transient_costs_one_record_not_the_batch(
    platform, echo, echo_topics, producer, outputs, dead_letters, unique
):
    app, client = echo
    source = echo_topics[0]
    ids = []
    for i in range(300):
        ticket = f"reject-me-{unique}" if i == 150 else f"ok-{unique}-{i}"
        record = created(ticket)
        ids.append(dict(record.headers)["ce_id"].decode())
        await producer.send(source, record.value, key=record.key, headers=record.headers, partition=0)
    await producer.flush()
    bad_id = ids.pop(150)
    await outputs.wait_for(lambda rs: len(rs) >= 299, timeout=60)
    (dead,) = [
        r
        for r in await dead_letters.wait_for(
            lambda rs: any(dlq(r, "dlq_source_topic") == source for r in rs), timeout=30
        )
        if dlq(r, "dlq_source_topic") == source
    ]
    attempts = app.state.echo.attempts[f"reject-me-{unique}"]
    await asyncio.sleep(3)  # nothing loops: no more attempts, no second dead letter
    await outputs.settle(0.5)
    await dead_letters.settle(0.5)

    assert sorted(r.value.decode() for r in outputs.records) == sorted(ids)
    assert dict(dead.headers)["ce_id"].decode() == bad_id
    assert dlq(dead, "dlq_code") == "unprocessable"
    assert dlq(dead, "dlq_reason") == "processing failed: CheckViolationError (23514)"
    assert len([r for r in dead_letters.records if dlq(r, "dlq_source_topic") == source]) == 1
    # halving 300 records down to one takes at most ~2 log2(300) transactions that hold it
    assert 2 <= attempts <= 20
    assert app.state.echo.attempts[f"reject-me-{unique}"] == attempts
    metrics = (await client.get("/metrics")).text
    assert 'support_dead_letters_total{reason="unprocessable"} 1.0' in metrics
    assert 'support_consumer_batches_total{outcome="isolated"}' in metrics


async def test_duplicates_redeliveries_and_stale_events_change_nothing(
    platform, echo, echo_topics, producer, outputs, unique
):
    _, client = echo
    source = echo_topics[0]
    ticket = f"t-{unique}"
    first = created(ticket)
    resolved = follow_up(TicketResolved(ticket_id=ticket, tier=Tier.L1, agent_id="ann", resolution_code="done"))
    late = follow_up(TicketResponded(ticket_id=ticket, tier=Tier.L1, agent_id="ann"))  # after the resolution: stale
    for record in (first, first, resolved, first, late):  # the same event id three times, at three offsets
        await producer.send_and_wait(source, record.value, key=record.key, headers=record.headers)
    marker = created(f"marker-{unique}")
    await producer.send_and_wait(source, marker.value, key=marker.key, headers=marker.headers)
    await outputs.wait_for(lambda rs: any(r.key == marker.key for r in rs), timeout=30)
    await outputs.settle(1.0)

    mine = [r.value.decode() for r in outputs.records if r.key == ticket.encode()]
    assert mine == [dict(first.headers)["ce_id"].decode(), dict(resolved.headers)["ce_id"].decode()]
    metrics = (await client.get("/metrics")).text
    assert 'support_consumer_events_ignored_total{reason="duplicate"} 2.0' in metrics
    assert 'support_consumer_events_ignored_total{reason="stale"} 1.0' in metrics
