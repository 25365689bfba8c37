"""`python -m services.router` refuses an invalid charter before touching anything: one line
naming the variable and the file, then one line per problem naming the entry by path."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from shared.charter import DEFAULT_PATH
from tests.processes import ROOT


def test_an_invalid_charter_stops_the_service_naming_each_problem(tmp_path):
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["tiers"]["L2"]["sla"]["P1"]["first_response"] = "soon"
    data["tiers"]["L1"]["roster"]["max_open_per_agent"] = 0
    charter = tmp_path / "charter.yaml"
    charter.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "services.router"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LADDER_CHARTER": str(charter)},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"LADDER_CHARTER={charter}: invalid tier charter {charter}:",
        "  tiers.L1.roster.max_open_per_agent: Input should be greater than or equal to 1",
        "  tiers.L2.sla.P1.first_response: expected a duration like 90s, 15m, 4h, 1d or 1h30m",
    ]
