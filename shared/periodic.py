"""Periodic work, driven in one place for every service: router's assignment pass, metrics'
KPI refresh, every service's retention pass. The decision lives in the service's `core/`;
this is only the loop around it.

Invariants (tests: tests/integration/kit/test_faults.py, tests/unit/kit/test_periodic.py):
1. `step` runs every `interval_s` after the service started; a step never overlaps the next.
2. A failing step is an `Outage`: backoff steps up to a cap, one log line per step, the
   loop's readiness check names the cause (at once when systemic), and the next success
   ends it. A failure never ends the loop.
3. Work driven by change (`wake`, e.g. metrics' KPI refresh after each committed batch) runs
   early, but never sooner than `soonest()` seconds after the previous step began, so a
   stream of changes costs a bounded share of the time; many wakes meanwhile make one step.
   A wake never shortens a failure's backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from shared.delivery.failures import Outage


class Periodic:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        *,
        interval_s: float,
        stalled: Gauge,
        soonest: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.name, self.interval_s = name, interval_s
        self._step = step
        self._soonest = soonest
        self.outage = Outage(f"loop {name}", stalled, first_pause_s=min(interval_s, 1.0))
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._last_start = 0.0

    def wake(self) -> None:
        """Something changed: run the step soon (invariant 3)."""
        self._woken.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"periodic-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def ready(self) -> bool | str:
        if self._task is None or self._task.done():
            return f"{self.name}: not running"
        return self.outage.ready()

    async def _run(self) -> None:
        delay, failing = self.interval_s, False
        while True:
            if failing:
                await asyncio.sleep(delay)
            else:
                await self._until_due(delay)
            self._woken.clear()
            self._last_start = time.monotonic()
            try:
                await self._step()
            except Exception as error:
                delay, failing = max(self.outage.failed(error), self.interval_s), True
                continue
            self.outage.healed()
            delay, failing = self.interval_s, False

    async def _until_due(self, delay: float) -> None:
        """`delay` seconds, or less after a wake, but not before `soonest()` has passed since
        the last step began."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), delay)
        if self._woken.is_set():
            await asyncio.sleep(max(0.0, self._last_start + self._soonest() - time.monotonic()))
