"""Retention decisions, pure (shared/retention.py, services/metrics/core/retention.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics.core import retention as kpi_retention
from services.metrics.core.visits import DURATION_KINDS
from services.router.settings import RouterSettings
from shared.retention import Rule, kit_rules, plan
from shared.settings import ConfigError, load

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_each_rule_cuts_at_now_minus_what_it_keeps():
    rules = [*kit_rules(timedelta(days=30)), Rule("sla_timers", "settled_at", timedelta(days=9), "state <> 'pending'")]
    assert [(rule.table, cutoff) for rule, cutoff in plan(rules, NOW)] == [
        ("inbox", NOW - timedelta(days=30)),
        ("inbox_duplicates", NOW - timedelta(days=30)),
        ("outbox_quarantine", NOW - timedelta(days=30)),
        ("sla_timers", NOW - timedelta(days=9)),
    ]


def test_the_kpi_projection_keeps_the_longest_window_and_a_margin_at_least():
    assert kpi_retention.keep(timedelta(days=1)) == timedelta(days=32)
    assert kpi_retention.keep(timedelta(days=90)) == timedelta(days=90)
    assert not set(kpi_retention.COUNTED_KINDS) & {kind.value for kind in DURATION_KINDS}


def test_retention_defaults_to_the_kit_wide_setting_and_a_service_overrides_it(monkeypatch):
    monkeypatch.delenv("LADDER_RETENTION_DAYS", raising=False)
    assert load(RouterSettings).retention == timedelta(days=30)
    monkeypatch.setenv("LADDER_RETENTION_DAYS", "45")
    assert load(RouterSettings).retention == timedelta(days=45)
    monkeypatch.setenv("ROUTER_RETENTION_DAYS", "60")
    assert load(RouterSettings).retention == timedelta(days=60)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LADDER_RETENTION_DAYS", "0.5"), ("ROUTER_RETENTION_DAYS", "-3"), ("ROUTER_PRUNE_INTERVAL_S", "0")],
)
def test_bad_retention_settings_name_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load(RouterSettings)
