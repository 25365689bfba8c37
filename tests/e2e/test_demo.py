"""`make demo` itself, with a small ticket count: it starts everything, drives the simulated
traffic, prints the KPI table checked against the truth, and exits 0. Afterwards the test
stops what the demo started (and restarts the services if they were running before)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

from tests.processes import ROOT

SERVICES = ROOT / "deploy" / "local" / "services.sh"
PROMETHEUS = ROOT / "deploy" / "local" / "prometheus.sh"


def running(script) -> bool:
    return subprocess.run(["bash", str(script), "status"], capture_output=True, cwd=ROOT).returncode == 0


def restore(services_before: bool, prometheus_before: bool) -> None:
    subprocess.run(["bash", str(SERVICES), "stop"], cwd=ROOT, capture_output=True, timeout=120)
    if not prometheus_before:
        subprocess.run(["bash", str(PROMETHEUS), "stop"], cwd=ROOT, capture_output=True, timeout=60)
    if services_before:
        subprocess.run(["bash", str(SERVICES), "start"], cwd=ROOT, capture_output=True, timeout=180)


async def test_make_demo_exits_0_with_the_kpis_checked(platform):
    services_before, prometheus_before = running(SERVICES), running(PROMETHEUS)
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            ["make", "demo", "DEMO_TICKETS=120", "DEMO_SEED=3"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "SKIP_INSTALL": "1"},
        )
    finally:
        await asyncio.to_thread(restore, services_before, prometheus_before)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "120/120 tickets finished" in output
    assert "every KPI exported by the metrics service equals the truth" in output
    assert "first-contact resolution" in output and "http://127.0.0.1:9090" in output
    assert "http://127.0.0.1:8004/ladder" in output  # the ladder page
    written = re.search(r"ladder report \d{4}-W\d{2}: (\S+\.html) and (\S+\.md)", output)  # this week's report
    assert written, output[-2000:]
    for path in written.groups():
        assert await asyncio.to_thread(os.path.isfile, path), path
