"""`shared.periodic`: the loop around periodic work; invariant 3, work driven by change."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Gauge

from shared.periodic import Periodic


def stalled() -> Gauge:
    return Gauge("stalled", "test", ["part"], registry=CollectorRegistry())


async def test_a_wake_runs_the_step_long_before_its_interval() -> None:
    ran = asyncio.Event()

    async def step() -> None:
        ran.set()

    loop = Periodic("kpis", step, interval_s=60, stalled=stalled())
    await loop.start()
    try:
        loop.wake()
        await asyncio.wait_for(ran.wait(), 10)  # the interval is a minute
    finally:
        await loop.stop()


async def test_wakes_meanwhile_make_one_step_no_sooner_than_the_gap() -> None:
    starts: list[float] = []

    async def step() -> None:
        starts.append(time.monotonic())

    loop = Periodic("kpis", step, interval_s=60, stalled=stalled(), soonest=lambda: 0.5)
    await loop.start()
    try:
        loop.wake()
        while not starts:  # noqa: ASYNC110 - the loop's own task appends
            await asyncio.sleep(0.01)
        for _ in range(20):  # a stream of changes while the gap runs
            loop.wake()
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.5)
    finally:
        await loop.stop()
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 0.5


async def test_a_wake_does_not_shorten_a_failures_backoff() -> None:
    tries: list[float] = []

    async def step() -> None:
        tries.append(time.monotonic())
        raise RuntimeError("refresh failed")

    loop = Periodic("kpis", step, interval_s=2, stalled=stalled())
    await loop.start()
    try:
        loop.wake()
        while not tries:  # noqa: ASYNC110 - the loop's own task appends
            await asyncio.sleep(0.01)
        for _ in range(10):
            loop.wake()
            await asyncio.sleep(0.05)
        assert len(tries) == 1  # waiting out the backoff (at least the interval), not the wakes
    finally:
        await loop.stop()
