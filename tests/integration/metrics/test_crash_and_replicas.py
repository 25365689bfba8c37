"""The metrics service as real processes (`python -m services.metrics`): SIGKILL mid-stream
and a restart count nothing twice; duplicates injected with kcat (an independent client)
change nothing and are counted; two replicas in one consumer group export the same values;
promtool approves the live /metrics; `ladder kpis` prints them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared import envelope as ce
from tests.integration.metrics.conftest import kpi_lines, kpi_series, promtool_check, wait_until
from tests.integration.metrics.test_oracle import labels, p1, p3
from tests.kafka_tools import kcat
from tests.processes import ROOT, ServiceProcess
from tests.unit.metrics.stories import Story

RESOLVED_FIRST, ESCALATED = 3000, 1000  # p1 tickets (L1 resolves, rated 5), p3 tickets (L2 resolves, rated 2)


def stories(unique: str, count: int, path, start: datetime, label: str) -> list[ce.Envelope]:
    return [
        envelope
        for i in range(count)
        for envelope in path(Story(f"{unique}-{label}-{i}", start + timedelta(seconds=i))).events
    ]


async def kpis(url: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        return (await client.get("/v1/kpis")).json()


async def metrics(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        return (await client.get("/metrics")).text


async def settled(url: str) -> dict:
    """KPIs computed after this moment (the refresher runs every 0.3 s here)."""
    asked = datetime.now(UTC)
    return await wait_until(lambda: _computed_after(url, asked), timeout=20, pause=0.1)


async def _computed_after(url: str, moment: datetime) -> dict | None:
    document = await kpis(url)
    return document if datetime.fromisoformat(document["computed_at"]) > moment else None


def assert_totals(document: dict, first: int, escalated: int, duplicates: int) -> None:
    every = document["windows"]["all"]
    l1, l2 = every["tiers"]["L1"], every["tiers"]["L2"]
    assert (l1["arrivals"], l1["visits_ended"], l1["first_contact_resolutions"]) == (first + escalated,) * 2 + (first,)
    assert (l1["resolutions"], l1["escalations"], l1["ratings"], l1["satisfied_ratings"]) == (
        first,
        escalated,
        first,
        first,
    )
    assert (l2["arrivals"], l2["resolutions"], l2["ratings"], l2["satisfied_ratings"]) == (escalated,) * 3 + (0,)
    assert l1["resolution_time_seconds"] == {"0.5": 3660.0, "0.9": 3660.0}  # p1: 61 minutes
    assert l2["resolution_time_seconds"] == {"0.5": 7260.0, "0.9": 7260.0}  # p3: 121 minutes
    assert l1["first_response_time_seconds"] == {  # 10 minutes (p1) and 4 (p3)
        "mean": pytest.approx((first * 600 + escalated * 240) / (first + escalated), rel=1e-12),
        "median": 600.0,
    }
    assert (every["resolved_tickets"], every["resolved_without_escalation"]) == (first + escalated, first)
    assert every["ignored"] == ({"duplicate": duplicates} if duplicates else {})
    assert document["windows"]["7d"] == every  # everything happened within the last week


def kcat_publish(bootstrap: str, topic: str, envelope: ce.Envelope) -> None:
    """The same event again, through librdkafka (murmur2, like every Ladder producer)."""
    record = ce.encode(envelope)
    headers = [arg for name, value in record.headers for arg in ("-H", f"{name}={value.decode()}")]
    subprocess.run(
        kcat(
            bootstrap,
            "-P",
            "-t",
            topic,
            "-k",
            record.key.decode(),
            "-X",
            "partitioner=murmur2_random",
            *headers,
        ),
        input=record.value + b"\n",
        check=True,
        timeout=30,
        capture_output=True,
    )


def ladder(*args: str) -> str:
    """The `ladder` command line, as a process."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    ).stdout


async def test_kill_restart_duplicates_and_replicas_leave_every_value_exact(private, producer, unique):
    start = datetime.now(UTC) - timedelta(days=1)
    events = stories(unique, RESOLVED_FIRST, p1, start, "p1") + stories(unique, ESCALATED, p3, start, "p3")
    env = private.env("g1")
    first = ServiceProcess("metrics", env).start()
    try:
        publishing = asyncio.create_task(private.publish(producer, events))
        seen = await wait_until(lambda: _some_but_not_all(first.url), timeout=60, pause=0.05)
        first.kill()  # SIGKILL, mid-stream
        await publishing
    finally:
        first.kill()
    assert 0 < seen < RESOLVED_FIRST + ESCALATED

    with ServiceProcess("metrics", env) as restarted:
        await private.consumed("g1")
        assert_totals(await settled(restarted.url), RESOLVED_FIRST, ESCALATED, duplicates=0)

        duplicated = [events[1], events[3], events[4]]  # the first ticket's routing, resolution and rating
        for envelope in duplicated:
            kcat_publish(private.bootstrap, private.events, envelope)
        await private.consumed("g1")
        document = await settled(restarted.url)
        assert_totals(document, RESOLVED_FIRST, ESCALATED, duplicates=3)
        page = await metrics(restarted.url)
        promtool_check(page)
        assert kpi_series(page)[("support_events_ignored_total", labels(reason="duplicate"))] == 3

        # a replica joins the group, then both share the partitions of what comes next
        with ServiceProcess("metrics", env) as replica:
            more = stories(unique, 200, p1, start + timedelta(hours=2), "more")
            await private.publish(producer, more)
            await private.consumed("g1")
            one, other = await settled(restarted.url), await settled(replica.url)
            assert_totals(one, RESOLVED_FIRST + 200, ESCALATED, duplicates=3)
            assert {**one, "computed_at": None} == {**other, "computed_at": None}
            assert kpi_lines(await metrics(restarted.url)) == kpi_lines(await metrics(replica.url))

        table = ladder("kpis", "--url", restarted.url, "--window", "all")
        rows = {line[:32].strip(): line[32:].split() for line in table.splitlines()[3:] if line.strip()}
        assert rows["Arrivals (visits started)"] == ["4200", "1000", "0"]
        assert rows["Time to resolution, median"] == ["1h", "1m", "2h", "1m", "—"]
        assert rows["Satisfaction (rated 4-5)"] == ["100.0%", "0.0%", "—"]
        printed = ladder("kpis", "--url", restarted.url, "--json")
        assert json.loads(printed)["windows"]["all"]["tiers"]["L2"]["arrivals"] == ESCALATED


async def _some_but_not_all(url: str) -> int | None:
    try:
        arrivals = (await kpis(url))["windows"]["all"]["tiers"]["L1"]["arrivals"]
    except httpx.HTTPError:
        return None
    return arrivals if arrivals > 0 else None
