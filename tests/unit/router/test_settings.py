"""router's settings, and the charter it refuses to start on (one line per problem, by path)."""

from __future__ import annotations

import copy

import pytest
import yaml

from services.router.main import create_app
from services.router.settings import RouterSettings
from shared.charter import DEFAULT_PATH
from shared.settings import ConfigError, StartupError, load

DEFAULT = yaml.safe_load(DEFAULT_PATH.read_text())


def test_defaults_and_the_charter_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("LADDER_CHARTER", raising=False)
    settings = load(RouterSettings)
    assert (settings.port, settings.consumer_group, settings.schema_name, settings.charter) == (
        8002,
        "ladder-router",
        "router",
        None,
    )
    monkeypatch.setenv("LADDER_CHARTER", str(tmp_path / "charter.yaml"))
    monkeypatch.setenv("ROUTER_SCHEMA_NAME", "router_test")
    settings = load(RouterSettings)
    assert (settings.charter, settings.schema_name) == (tmp_path / "charter.yaml", "router_test")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ROUTER_SCHEMA_NAME", "router; drop"), ("ROUTER_PORT", "0"), ("ROUTER_ASSIGN_INTERVAL_S", "0")],
)
def test_a_bad_value_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^invalid environment variable {variable}: "):
        load(RouterSettings)


def changed(path: str, value) -> dict:
    data = copy.deepcopy(DEFAULT)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("tiers.L1.roster.max_open_per_agent", 0),
        ("tiers.L2.roster.rotation.on_duty", 9),
        ("tiers.L2.roster.rotation.starting", "someday"),
        ("tiers.L3.office_hours", "tea-time"),
        ("tiers.L3.shadow_queue", None),
        ("routing.queues", {"billing": "Not A Queue"}),
        ("routing.jump.to", "L4"),
        ("routing.reopen_to", "L0"),
        ("routing.bug_tier", "L2"),
    ],
)
def test_router_refuses_a_charter_invalid_in_one_field_naming_its_path(tmp_path, path, value):
    charter = tmp_path / "charter.yaml"
    charter.write_text(yaml.safe_dump(changed(path, value), sort_keys=False))
    with pytest.raises(StartupError) as caught:
        create_app(RouterSettings(LADDER_CHARTER=charter))
    first, *problems = str(caught.value).splitlines()
    assert first == f"LADDER_CHARTER={charter}: invalid tier charter {charter}:"
    assert problems and all(line.startswith("  ") for line in problems)
    expected = {"routing.bug_tier": "tiers.L2.shadow_queue"}.get(path, path)  # the missing piece is named
    assert any(line.strip().startswith(expected) for line in problems), problems
