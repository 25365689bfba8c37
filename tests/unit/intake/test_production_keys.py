"""The development API keys (deploy/local/api-keys.json) are refused with LADDER_ENV=production."""

from pathlib import Path

import pytest

from services.intake.settings import IntakeSettings, load_key_ring
from shared.settings import ConfigError, load

DEVELOPMENT_KEYS = Path(__file__).resolve().parents[3] / "deploy" / "local" / "api-keys.json"
OWN_KEY = '{"keys": [{"name": "helpdesk", "sha256": "%s", "actions": ["create"]}]}' % ("ab" * 32)


def settings(monkeypatch, ladder_env: str, **env: str) -> IntakeSettings:
    monkeypatch.setenv("LADDER_ENV", ladder_env)
    monkeypatch.setenv("DATABASE_URL", "postgresql://ladder_intake:not-the-development-one@db/ladder")
    monkeypatch.delenv("INTAKE_API_KEYS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load(IntakeSettings)


def test_production_refuses_the_development_key_file(monkeypatch):
    with pytest.raises(ConfigError) as caught:
        load_key_ring(settings(monkeypatch, "production", INTAKE_API_KEYS_FILE=str(DEVELOPMENT_KEYS)))
    assert str(caught.value).startswith("invalid environment variable INTAKE_API_KEYS_FILE: a development key")


def test_production_takes_its_own_keys_and_development_takes_the_development_ones(monkeypatch):
    assert load_key_ring(settings(monkeypatch, "production", INTAKE_API_KEYS=OWN_KEY)).keys
    assert load_key_ring(settings(monkeypatch, "development", INTAKE_API_KEYS_FILE=str(DEVELOPMENT_KEYS))).keys
