"""A service pointed at nothing fails fast with one line that names the variable."""

import os
import subprocess
import sys
import time

import pytest

from tests.integration.intake.conftest import intake_env
from tests.processes import ROOT


def run_intake(**env):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "services.intake"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **intake_env(), "STARTUP_TIMEOUT_S": "5", **env},
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1", "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 (KAFKA_SECURITY_PROTOCOL="),
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port-here", "invalid environment variable KAFKA_BOOTSTRAP_SERVERS"),
        (
            "DATABASE_URL",
            "postgresql://ladder:pw@127.0.0.1:1/ladder",
            "DATABASE_URL=postgresql://ladder:***@127.0.0.1:1/ladder: PostgreSQL unreachable",
        ),
        ("DATABASE_URL", "not a url", "invalid environment variable DATABASE_URL"),
        ("INTAKE_API_KEYS", "{}", "invalid environment variable INTAKE_API_KEYS"),
    ],
)
def test_fails_fast_naming_the_variable(platform, variable, value, expected):
    result, elapsed = run_intake(**{variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines and expected in lines[-1], result.stderr
    assert "pw" not in result.stderr
    assert elapsed < 30


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DATABASE_URL": "postgresql://ladder:ladder@127.0.0.1:1/ladder"},
            "invalid environment variable DATABASE_URL: the development password",
        ),
        (
            {
                "DATABASE_URL": "postgresql://ladder:a-real-password@127.0.0.1:1/ladder",
                "INTAKE_API_KEYS": "",
                "INTAKE_API_KEYS_FILE": str(ROOT / "deploy/local/api-keys.json"),
            },
            "invalid environment variable INTAKE_API_KEYS_FILE: a development key",
        ),
    ],
)
def test_production_refuses_development_secrets_naming_the_variable(env, expected):
    """`LADDER_ENV=production` with the development database password or API keys: the
    service does not start, and its one line names the variable (never the secret)."""
    result, _ = run_intake(LADDER_ENV="production", **env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert expected in last, result.stderr
    assert "a-real-password" not in result.stderr + result.stdout
    assert "PostgreSQL unreachable" not in result.stderr  # refused before connecting
