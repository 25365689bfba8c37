"""What the KPI collector exports (services/metrics/adapters/exporter.py): the contract's
names and labels, absent series, zero-filled counters, promtool's approval."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.adapters.exporter import KpiCollector
from services.metrics.core.kpis import Total, snapshot
from services.metrics.core.visits import duration_bucket
from tests.unit.deploy import CONTRACT, allowed_labels, series_names

NOW = datetime(2026, 3, 2, tzinfo=UTC)


class Cached:
    def __init__(self, kpis) -> None:
        self.snapshot, self.duration_s = kpis, 0.012


def page(totals: dict, ranked: dict, backlog: dict) -> str:
    windows = ("7d", "30d", "all")
    kpis = snapshot(NOW, dict.fromkeys(windows, totals), dict.fromkeys(windows, ranked), backlog)
    registry = CollectorRegistry()
    registry.register(KpiCollector(Cached(kpis), clock=lambda: NOW + timedelta(seconds=3)))
    return generate_latest(registry).decode()


SOME = {
    ("arrival", "L1", ""): Total(10),
    ("arrival", "L4", ""): Total(1),
    ("visit_end", "L1", ""): Total(8, 6),
    ("escalation", "L1", "L2/handoff"): Total(2),
    ("resolution", "L1", str(duration_bucket(5_000_000))): Total(6, 0, 30_000_000),
    ("sla_breach", "L4", "time_in_tier"): Total(1),
    ("ignored", "", "stale"): Total(2),
}
RANKED = {("resolution", "L1", 0.5): 5_000_000, ("resolution", "L1", 0.9): 5_000_000}


def series(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_names_and_labels_are_the_contract_and_promtool_approves():
    text = page(SOME, RANKED, {"L1": 2})
    names = series_names()
    for name, labels in series(text):
        if name.startswith("support_kpi_"):  # the exporter's own health
            continue
        assert name in names, name
        assert {label for label, _ in labels} <= allowed_labels(name), name
        assert CONTRACT[names[name][0]].kpi, name
    checked = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_absent_ratios_have_no_series_and_counters_start_at_zero():
    exported = series(page(SOME, RANKED, {"L1": 2}))
    ratios = {
        (name, dict(labels)["tier"]) for name, labels in exported if name.endswith("_ratio") and "tier" in dict(labels)
    }
    assert ("support_first_contact_resolution_ratio", "L1") in ratios
    assert ("support_first_contact_resolution_ratio", "L2") not in ratios  # no visit ended at L2
    assert ("support_satisfaction_ratio", "L1") not in ratios  # nobody rated
    assert not any(name == "support_resolved_without_escalation_ratio" for name, _ in exported)
    tiers = {dict(labels)["tier"] for name, labels in exported if name == "support_tier_arrivals_total"}
    assert tiers == {"L1", "L2", "L3", "L4"}  # L1-L3 always, L4 because it was seen
    breaches = {
        (dict(labels)["tier"], dict(labels)["kind"]): value
        for (name, labels), value in exported.items()
        if name == "support_sla_breaches_total"
    }
    assert len(breaches) == 10 and breaches[("L4", "time_in_tier")] == 1  # every tier and kind, from 0
    assert exported[("support_events_ignored_total", frozenset({("reason", "duplicate")}))] == 0
    assert exported[("support_backlog_tickets", frozenset({("tier", "L1")}))] == 2
    assert exported[("support_resolution_duration_seconds_bucket", frozenset({("tier", "L1"), ("le", "60.0")}))] == 6
    assert exported[("support_kpi_age_seconds", frozenset())] == 3.0


def test_nothing_is_exported_before_the_first_snapshot():
    registry = CollectorRegistry()
    registry.register(KpiCollector(Cached(None), clock=lambda: NOW))
    assert generate_latest(registry) == b""
