"""What every benchmark needs: services as real processes on a private namespace (topics
under a prefix, their own schemas), their CPU and memory, and the cleanup."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from shared.db import drop_schemas
from shared.kafka import client_options, create_topics
from shared.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://ladder:ladder@localhost:5432/ladder")
PORTS = {"intake": 18001, "router": 18002, "escalation": 18003, "metrics": 18004}


class Service:
    """`python -m services.<name>` with `env`, ready on its port; its log in var/bench/."""

    def __init__(self, name: str, env: dict[str, str], port: int | None = None) -> None:
        self.name, self.port = name, port or PORTS[name]
        OUT.mkdir(parents=True, exist_ok=True)
        log = (OUT / f"{name}-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LOG_LEVEL": "WARNING", **env, f"{name.upper()}_PORT": str(self.port)},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start; see {OUT / f'{name}-{self.port}.log'}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, field: str) -> float:
        """A /proc/<pid>/status memory field in MiB (VmRSS now, VmHWM at its peak)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        return _cpu_seconds(Path(f"/proc/{self.proc.pid}/stat"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Namespace:
    """Fresh prefixed topics and private schema names; `close` deletes and drops them."""

    def __init__(self, tag: str, partitions: int = 6) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.prefix = f"bench-{tag}-{self.run}."
        self.topics = Topics.prefixed(self.prefix)
        self.partitions = partitions
        self.schemas = {name: f"{name}_bench_{self.run}" for name in ("intake", "router", "escalation", "metrics")}

    def env(self, service: str) -> dict[str, str]:
        env = {"LADDER_TOPIC_PREFIX": self.prefix, f"{service.upper()}_CONSUMER_GROUP": f"bench-{service}-{self.run}"}
        if service in self.schemas:
            env[f"{service.upper()}_SCHEMA_NAME"] = self.schemas[service]
        return env

    async def open(self) -> Namespace:
        await create_topics(BOOTSTRAP, self.topics.all, self.partitions)
        return self

    async def close(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, **client_options())
        await admin.start()
        try:
            await admin.delete_topics(list(self.topics.all))
        finally:
            await admin.close()
        await drop_schemas(DATABASE_URL, *self.schemas.values())


def machine_ticks(stat: str = "/proc/stat") -> tuple[int, int, int]:
    """The whole machine's CPU time so far, in clock ticks: (all, busy, stolen). Busy is
    neither idle nor waiting for I/O; stolen is time the hypervisor gave this machine's CPUs
    to others (a noisy neighbour makes the same run slower)."""
    with open(stat) as lines:
        _, *ticks = next(lines).split()  # "cpu user nice system idle iowait irq softirq steal ..."
    user, nice, system, idle, iowait, irq, softirq, steal = (int(t) for t in ticks[:8])
    everything = user + nice + system + idle + iowait + irq + softirq + steal
    return everything, everything - idle - iowait - steal, steal


def machine_shares(before: tuple[int, int, int], after: tuple[int, int, int]) -> dict[str, float]:
    """Between two `machine_ticks` readings: the shares of the machine busy and stolen, in %."""
    span = max(after[0] - before[0], 1)
    return {
        "busy_pct": round(100 * (after[1] - before[1]) / span, 1),
        "stolen_pct": round(100 * (after[2] - before[2]) / span, 1),
    }


def platform_cpu() -> dict[str, float]:
    """CPU seconds so far of the local PostgreSQL and Kafka processes, and of the broker's JIT
    compiler threads (`kafka_jit`, part of `kafka`): a freshly started broker compiles for
    minutes, a long-running one does not."""
    found = {"postgres": 0.0, "kafka": 0.0}
    jit = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes()
            kind = "postgres" if command.startswith(b"postgres") else "kafka" if b"kafka.Kafka" in command else None
            if kind:
                found[kind] += _cpu_seconds(proc / "stat")
            if kind == "kafka":
                jit += sum(
                    _cpu_seconds(task / "stat")
                    for task in (proc / "task").iterdir()
                    if (task / "comm").read_text().startswith(("C1 CompilerThre", "C2 CompilerThre"))
                )
        except OSError:
            continue
    return found | {"kafka_jit": jit}


def _cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# py-spy is a tool, not a dependency: `make bench` installs it pinned (requirements/py-spy.lock).
PY_SPY = next(
    (str(p) for p in (ROOT / "var/tools/py-spy/bin/py-spy", Path(sys.executable).parent / "py-spy") if p.exists()),
    shutil.which("py-spy") or "py-spy",
)


class Profiler:
    """py-spy sampling each of `pids` (name -> pid) into var/bench/profile-<tag>-<name>.folded
    (folded stacks: `frame;frame;... count` per line) until `stop`."""

    def __init__(self, pids: dict[str, int], tag: str) -> None:
        if not shutil.which(PY_SPY):
            raise SystemExit("profiling needs py-spy: `make bench` installs it (var/tools/py-spy)")
        self.files = {name: OUT / f"profile-{tag}-{name}.folded" for name in pids}
        options = ["--rate", "100", "--format", "raw", "--nonblocking"]
        self._procs = [
            subprocess.Popen(
                [PY_SPY, "record", "--pid", str(pid), "--output", str(self.files[name]), *options],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in pids.items()
        ]

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        """Stop sampling; per process, its top costs (`top_costs`)."""
        for proc in self._procs:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in self._procs:
            proc.wait(60)
        return {name: top_costs(path) for name, path in self.files.items() if path.exists()}


class Machine:
    """`perf record` on every CPU over a phase: each process's share of the machine's samples
    (the services, this bench, PostgreSQL, Kafka; `swapper` is idle) and each library's (the
    interpreter, the database, the JVM's compiled code, the kernel, OpenSSL). py-spy sees
    Python frames only. Needs Linux perf (`LADDER_BENCH_TOOLS=1 deploy/local/install.sh`)."""

    def __init__(self, names: dict[int, str], tag: str) -> None:
        self.names = names  # pid -> what to call the process
        self.data = OUT / f"perf-{tag}.data"
        self._proc = None
        if shutil.which("perf"):
            command = ["perf", "record", "--all-cpus", "--freq", "499", "--output", str(self.data)]
            self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        if self._proc is None:
            print("no machine profile: perf is not installed (Debian's linux-perf)")
            return {}
        self._proc.send_signal(signal.SIGINT)  # perf writes its data on SIGINT
        self._proc.wait(60)
        processes: dict[str, float] = {}
        for thread, share in perf_report(self.data, "pid", down_to=0):  # "tid:comm"; many small backends
            tid, _, comm = thread.partition(":")
            owner = self._owner(tid, comm)
            processes[owner] = processes.get(owner, 0.0) + share
        ranked = sorted(processes.items(), key=lambda item: -item[1])[:8]
        return {
            "machine by process": [(name, round(share, 1)) for name, share in ranked],
            "machine by library": perf_report(self.data, "dso")[:8],
        }

    def _owner(self, tid: str, comm: str) -> str:
        """The named process a thread belongs to; else postgres, kafka, or the thread's name."""
        try:
            tgid = re.search(r"^Tgid:\s*(\d+)", Path(f"/proc/{tid}/status").read_text(), re.MULTILINE)
            pid = int(tgid[1]) if tgid else -1
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # the thread or process has ended
            return comm
        if pid in self.names:
            return self.names[pid]
        return "postgres" if command.startswith(b"postgres") else "kafka" if b"kafka.Kafka" in command else comm


def perf_report(data: Path, key: str, down_to: float = 0.5) -> list[tuple[str, float]]:
    """`perf report --sort key`: (value, % of all samples), largest first, down to `down_to` %."""
    lines = subprocess.run(
        ["perf", "report", "--input", str(data), "--sort", key, "--stdio", "--quiet", "--percent-limit", str(down_to)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    found = (re.match(r"\s*([\d.]+)%\s+(.+?)\s*$", line) for line in lines)
    return [(match[2], float(match[1])) for match in found if match]


def top_costs(folded: Path, n: int = 5) -> list[tuple[str, float]]:
    """The `n` functions found running most often themselves (self time), each with its
    percentage of the samples in which the process was busy (py-spy leaves idle ones out)."""
    own: Counter[str] = Counter()
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            own[re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])] += int(count)
    total = sum(own.values()) or 1
    return [(frame, round(100 * count / total, 1)) for frame, count in own.most_common(n)]
