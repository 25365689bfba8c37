"""The faults, injected one after another on a fixed cycle while the traffic runs:
SIGKILL and restart of each service, a PostgreSQL restart (fast, then a crash), SIGKILL of
one broker and its restart after a while, and cutting every connection between the services
and the brokers or the database (the proxy refuses new ones for a moment, too)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos.proxy import Proxy
from tests.processes import ROOT, ServiceProcess

log = logging.getLogger("chaos")
DEPLOY = ROOT / "deploy" / "local"
CYCLE = (
    "kill intake",
    "cut kafka",
    "kill router",
    "restart postgres",
    "kill escalation",
    "kill broker",
    "kill metrics",
    "cut postgres",
)


@dataclass
class Faults:
    processes: dict[str, ServiceProcess]
    kafka_proxy: Proxy
    postgres_proxy: Proxy
    pg_env: dict[str, str]
    cluster_env: dict[str, str]
    interval_s: float = 10.0
    broker_down_s: float = 15.0
    injected: Counter[str] = field(default_factory=Counter)
    timeline: list[str] = field(default_factory=list)
    _broker: int = 0
    _pg_restarts: int = 0

    async def run(self, keep_going: Callable[[], bool]) -> None:
        """Inject faults until `keep_going()` is false once a whole cycle is done."""
        started, step = time.monotonic(), 0
        while step < len(CYCLE) or keep_going():
            await asyncio.sleep(self.interval_s)
            fault = CYCLE[step % len(CYCLE)]
            at = time.monotonic() - started
            detail = await self.inject(fault)
            self.injected[fault] += 1
            self.timeline.append(f"{at:7.1f}s {fault}{detail}")
            log.warning("fault %s%s", fault, detail)
            step += 1

    async def inject(self, fault: str) -> str:
        verb, what = fault.split()
        if verb == "kill" and what in self.processes:
            process = self.processes[what]
            await asyncio.to_thread(process.kill)  # SIGKILL: no shutdown, no commit, no goodbye
            restarts = await supervise(process)
            return f" (started again after {restarts} failed start(s))" if restarts else ""
        if fault == "cut kafka":
            return f" ({await self.kafka_proxy.refuse_for(2.0)} connections)"
        if fault == "cut postgres":
            return f" ({await self.postgres_proxy.refuse_for(2.0)} connections)"
        if fault == "restart postgres":
            mode = ("fast", "immediate")[self._pg_restarts % 2]
            self._pg_restarts += 1
            await script("postgres.sh", "restart", mode, env=self.pg_env)
            return f" ({mode})"
        if fault == "kill broker":
            node = self._broker % 3 + 1
            self._broker += 1
            await script("cluster.sh", "kill-node", str(node), env=self.cluster_env)
            await asyncio.sleep(self.broker_down_s)
            await script("cluster.sh", "start-node", str(node), env=self.cluster_env)
            return f" {node} (down {self.broker_down_s:g}s)"
        raise ValueError(fault)


async def supervise(process: ServiceProcess, attempts: int = 10) -> int:
    """Start `process` as an orchestrator would: a service exits at start-up when what it
    needs is unreachable (fail fast, e.g. during a PostgreSQL restart), and is started again
    after a pause. Returns the failed starts."""
    for failed in range(attempts):
        try:
            await asyncio.to_thread(process.start, 120.0)
            return failed
        except AssertionError as error:  # exited early or not ready in time
            log.warning("%s did not start (%s); starting it again", process.service, str(error)[:200])
            await asyncio.to_thread(process.kill)
            await asyncio.sleep(2.0)
    raise RuntimeError(f"{process.service} did not start in {attempts} attempts")


async def script(name: str, *args: str, env: dict[str, str] | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(DEPLOY / name),
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"{name} {' '.join(args)} failed: {output.decode(errors='replace')[-2000:]}")
