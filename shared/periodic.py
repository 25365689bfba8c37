"""Periodic work, driven in one place for every service: router's assignment pass, metrics'
KPI refresh, every service's retention pass. The decision lives in the service's `core/`;
this is only the loop around it.

Invariants (tests: tests/integration/kit/test_faults.py):
1. `step` runs every `interval_s` after the service started; a step never overlaps the next.
2. A failing step is an `Outage`: backoff steps up to a cap, one log line per step, the
   loop's readiness check names the cause (at once when systemic), and the next success
   ends it. A failure never ends the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from shared.delivery.failures import Outage


class Periodic:
    def __init__(self, name: str, step: Callable[[], Awaitable[object]], *, interval_s: float, stalled: Gauge) -> None:
        self.name, self.interval_s = name, interval_s
        self._step = step
        self.outage = Outage(f"loop {name}", stalled, first_pause_s=min(interval_s, 1.0))
        self._task: asyncio.Task[None] | None = None

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
        delay = self.interval_s
        while True:
            await asyncio.sleep(delay)
            try:
                await self._step()
            except Exception as error:
                delay = max(self.outage.failed(error), self.interval_s)
                continue
            self.outage.healed()
            delay = self.interval_s
