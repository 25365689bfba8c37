"""deploy/grafana: provisioning files and the "Support ladder" dashboard. Grafana itself is
not needed: the JSON is checked for structure, every query is checked by promtool (as a
recording rule, with the template variables filled in) and against the metrics contract."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.unit.deploy import (
    CONTRACT,
    GRAFANA_DIR,
    assert_promtool_ok,
    contract_problems,
    load_yaml,
    promtool,
    recorded_names,
    scan_promql,
)

DASHBOARD = GRAFANA_DIR / "dashboards" / "support-ladder.json"
DATASOURCE_UID = "ladder-prometheus"
# Values for the template variables when checking a query; Grafana's own ones included.
VARIABLES = {
    "window": "7d",
    "tier": "L1",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1d",
    "__range_s": "86400",
}
# Contract metrics that no panel needs: the exact quantile gauges stand in for the
# resolution histogram, and the processed counter for the received one.
NOT_ON_THE_DASHBOARD = {"support_resolution_duration_seconds", "faststream_received_messages_total"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels inside collapsed rows
    return panels


def queries(dashboard: dict) -> list[tuple[str, dict]]:
    """(where, target) for every query of every panel."""
    return [
        (f"panel {panel['id']} {panel['title']!r} target {target['refId']}", target)
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def substitute(expr: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise AssertionError(f"unknown template variable ${name} in {expr!r}")
        return VARIABLES[name]

    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)
    assert "$" not in out, out
    return out


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "support-ladder"
    assert dashboard["title"] == "Support ladder"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard.get("id") is None, "a provisioned dashboard must not carry a database id"


def test_panel_ids_are_unique(dashboard):
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), sorted(ids)


def test_panels_are_known_types_and_do_not_overlap(dashboard):
    taken: dict[tuple[int, int], int] = {}
    for panel in all_panels(dashboard):
        assert panel["type"] in ("row", "timeseries", "stat", "table"), panel["title"]
        assert panel["title"], panel["id"]
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps panel {taken[(x, y)]}"
                taken[(x, y)] = panel["id"]


def test_every_query_uses_the_fixed_datasource(dashboard):
    for panel in all_panels(dashboard):
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["targets"], f"{panel['title']!r} has no query"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_template_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"window", "tier"}
    window = variables["window"]
    assert window["type"] == "custom"
    assert [o["value"] for o in window["options"]] == ["7d", "30d", "all"]
    assert window["current"]["value"] == "7d"
    tier = variables["tier"]
    assert tier["type"] == "query"
    assert tier["datasource"]["uid"] == DATASOURCE_UID
    assert tier["definition"] == "label_values(support_backlog_tickets, tier)"
    assert tier["query"]["query"] == tier["definition"]
    assert tier["multi"] and tier["includeAll"]


def test_tier_and_window_variables_are_used_where_they_apply(dashboard):
    for where, target in queries(dashboard):
        for selector in scan_promql(substitute(target["expr"])).selectors:
            metric = CONTRACT.get(selector.name)
            if metric is None or not metric.kpi:
                continue
            if "window" in metric.labels:
                assert "$window" in target["expr"], f'{where}: {selector.name} without window="$window"'
            if "tier" in metric.labels:
                assert 'tier=~"$tier"' in target["expr"], f'{where}: {selector.name} without tier=~"$tier"'


def test_every_query_is_valid_promql(dashboard, tmp_path):
    # promtool names a broken rule by its record name: panel id and refId
    rules = [
        {"record": f"panel_{panel['id']}_{target['refId']}", "expr": substitute(target["expr"])}
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    assert_promtool_ok(promtool("check", "rules", path))


def test_every_query_uses_the_metrics_contract(dashboard):
    recorded = recorded_names()
    problems = []
    for where, target in queries(dashboard):
        problems += contract_problems(substitute(target["expr"]), where, recorded)
    assert problems == []


def test_the_dashboard_shows_every_contract_metric(dashboard):
    used = set()
    for _, target in queries(dashboard):
        for selector in scan_promql(substitute(target["expr"])).selectors:
            used.add(
                re.sub(r"_(bucket|sum|count)$", "", selector.name) if selector.name not in CONTRACT else selector.name
            )
    assert set(CONTRACT) - NOT_ON_THE_DASHBOARD - used == set()


def test_the_panels_the_sres_asked_for_are_there(dashboard):
    titles = " | ".join(panel["title"].lower() for panel in all_panels(dashboard))
    for words in (
        "first-contact resolution",
        "escalation rate",
        "bounce-back rate by reason",
        "time to resolution (p50 / p90)",
        "reopen rate",
        "first response time (mean / median)",
        "customer satisfaction",
        "backlog",
        "sla breaches",
        "escalations per hour",
        "pipeline health",
        "throughput",
        "consumer lag",
        "dead letters",
        "outbox pending",
        "outbox oldest record age",
        "relay leader",
        "services up",
    ):
        assert words in titles, words


def test_datasource_provisioning():
    config = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "ladder.yml")
    assert config["apiVersion"] == 1
    [source] = config["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["access"] == "proxy"


def test_dashboard_provisioning():
    config = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "ladder.yml")
    assert config["apiVersion"] == 1
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
