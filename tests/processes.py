"""Run a service as a real OS process (for crash and start-up tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every service log this session wrote: tests/log_secrets.py checks them for secrets at its end.
SESSION_LOGS: list[Path] = []


class ServiceProcess:
    """`python -m services.<service>` (or `module`), its port in `<SERVICE>_PORT`."""

    def __init__(
        self, service: str, env: dict[str, str], module: str | None = None, log_dir: Path | None = None
    ) -> None:
        self.service, self.port, self.log_dir = service, free_port(), log_dir
        self.module = module or f"services.{service}"
        self.env = {**os.environ, **env, f"{service.upper()}_PORT": str(self.port)}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 60.0) -> ServiceProcess:
        # A file, not a pipe: an unread pipe fills up and blocks the service's logging.
        # The log outlives this method: output() reads it after the process ended.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"{self.service}-", suffix=".log", dir=self.log_dir, delete=False
        )
        SESSION_LOGS.append(Path(self.log.name))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.service} exited early: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"{self.service} not ready in {ready_timeout}s: {self.output()}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:] if self.proc else ""

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
