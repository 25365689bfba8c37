"""`make demo`'s help desks: the development secrets it generates are the ones the shipped
mappings name (so intake starts with every help desk connected), kept across runs; a
DEMO_VIA that names no help desk is refused before anything starts."""

from __future__ import annotations

import os
import stat
import subprocess

from services.intake.core.helpdesks.mapping import load_connections
from simulator.helpdesks import MAPPINGS
from tests.processes import ROOT

SCRIPT = ROOT / "deploy" / "local" / "helpdesk-secrets.sh"


def generate(path) -> dict[str, str]:
    env = {**os.environ, "HELPDESK_SECRETS_FILE": str(path)}
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, capture_output=True, timeout=60)
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_generated_secrets_connect_every_shipped_help_desk_and_are_kept(tmp_path, monkeypatch):
    path = tmp_path / "secrets" / "helpdesks.env"
    secrets = generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    connections = load_connections(MAPPINGS)  # what intake loads from INTAKE_HELPDESKS_DIR at start-up
    assert set(connections) == {"zendesk", "jira", "zammad", "freshdesk"}
    assert {c.mapping.secret_env: c.secret for c in connections.values()} == secrets
    assert generate(path) == secrets  # a second run keeps them


def test_a_demo_via_naming_no_help_desk_is_refused_before_anything_starts():
    env = {**os.environ, "DEMO_VIA": "helpscout", "DEMO_TICKETS": "1"}
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "local" / "demo.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "DEMO_VIA names no help desk" in result.stderr and "helpscout.yaml" in result.stderr
    assert result.stdout == ""  # nothing installed or started
