"""`make demo`'s help desks: the development secrets it generates are the ones the shipped
mappings name (so intake starts with every help desk connected), kept across runs; the
services get the mappings and the secrets, and DEMO_VIA sends the simulation through that
help desk (demo.sh run with the platform's scripts stubbed); a DEMO_VIA that names no help
desk is refused before anything starts."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

from services.intake.core.helpdesks.mapping import load_connections
from simulator.helpdesks import MAPPINGS
from tests.processes import ROOT

LOCAL = ROOT / "deploy" / "local"

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


def stubbed_demo(tmp_path, **env: str) -> str:
    """demo.sh (and the scripts it really needs) in a copy of the tree whose platform scripts
    and Python only say what they were asked, with the environment that matters to intake."""
    local = tmp_path / "deploy" / "local"
    local.mkdir(parents=True)
    for script in ("demo.sh", "lib.sh", "helpdesk-secrets.sh"):
        shutil.copy2(LOCAL / script, local / script)
    for name in ("helpdesks", "charter"):
        (tmp_path / "deploy" / name).symlink_to(ROOT / "deploy" / name)
    said = 'echo "$(basename "$0") $* dir=${INTAKE_HELPDESKS_DIR:-} zammad=${#LADDER_ZAMMAD_SECRET}"'
    for script in ("install.sh", "postgres.sh", "kafka.sh", "prometheus.sh", "services.sh", "python"):
        (local / script).write_text(f"#!/usr/bin/env bash\n{said}\n")
        (local / script).chmod(0o755)
    result = subprocess.run(
        ["bash", str(local / "demo.sh")],
        env={
            **{k: v for k, v in os.environ.items() if k not in ("INTAKE_HELPDESKS_DIR", "HELPDESK_SECRETS_FILE")},
            "LADDER_PYTHON": str(local / "python"),
            "DEMO_TICKETS": "5",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_demo_connects_the_help_desks_and_simulates_via_the_one_named(tmp_path):
    output = stubbed_demo(tmp_path, DEMO_VIA="zammad")
    helpdesks = tmp_path / "deploy" / "helpdesks"
    assert f"services.sh start dir={helpdesks} zammad=48" in output  # intake gets the mappings and secrets
    simulate = next(line for line in output.splitlines() if "cli.main simulate" in line)
    assert "--via zammad" in simulate and simulate.endswith(f"dir={helpdesks} zammad=48")
    assert "this run's HTTP share came in through the help desk zammad" in output
    assert "http://127.0.0.1:8001/v1/webhooks/<vendor>/<vendor>" in output and "http://127.0.0.1:9090" in output

    default = stubbed_demo(tmp_path / "again")
    assert "--via" not in default and "came in through" not in default
