"""escalation's settings: its defaults, the shared charter variable, and a bad value named."""

from pathlib import Path

import pytest

from services.escalation.settings import EscalationSettings
from shared.settings import ConfigError, load


def test_defaults_and_the_charter_variable(monkeypatch):
    settings = load(EscalationSettings)
    assert (settings.port, settings.consumer_group, settings.schema_name) == (8003, "ladder-escalation", "escalation")
    assert settings.charter is None  # the shipped deploy/charter/default.yaml
    monkeypatch.setenv("LADDER_CHARTER", "/etc/ladder/charter.yaml")
    monkeypatch.setenv("ESCALATION_TIMER_POLL_S", "2.5")
    settings = load(EscalationSettings)
    assert settings.charter == Path("/etc/ladder/charter.yaml") and settings.timer_poll_s == 2.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ESCALATION_TIMER_POLL_S", "0"), ("ESCALATION_SCHEMA_NAME", "drop table"), ("ESCALATION_TIMER_BATCH", "many")],
)
def test_a_bad_value_is_named(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"invalid environment variable {variable}"):
        load(EscalationSettings)
