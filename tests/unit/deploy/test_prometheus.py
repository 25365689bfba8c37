"""deploy/prometheus: the config, the rules and their promtool unit tests, and the rules
against the metrics contract."""

from __future__ import annotations

import re

import pytest

from tests.unit.deploy import (
    PROMETHEUS_DIR,
    assert_promtool_ok,
    contract_problems,
    load_yaml,
    promtool,
    recorded_names,
    scan_promql,
)

CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
SERVICES = {"intake": 8001, "router": 8002, "escalation": 8003, "metrics": 8004}


def rules_of(kind: str) -> list[dict]:
    return [
        rule for path in RULE_FILES for group in load_yaml(path)["groups"] for rule in group["rules"] if kind in rule
    ]


def test_the_files_are_there():
    assert [p.name for p in RULE_FILES] == ["alerts.yml", "recording.yml"]
    assert TEST_FILES, "no promtool tests in deploy/prometheus/tests/"


def test_config_is_valid():
    # also loads every rule file the config names
    assert_promtool_ok(promtool("check", "config", CONFIG))


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_are_valid(path):
    assert_promtool_ok(promtool("check", "rules", path))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path):
    assert_promtool_ok(promtool("test", "rules", path.name, cwd=path.parent))


def test_config_scrapes_every_service_every_15s():
    config = load_yaml(CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    # relative, so the same file works from deploy/prometheus and from /etc/prometheus
    assert config["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", *SERVICES}
    for name, port in SERVICES.items():
        [static] = jobs[name]["static_configs"]
        assert static["targets"] == [f"127.0.0.1:{port}"], name
        assert static["labels"] == {"service": name}, name
        assert "scrape_interval" not in jobs[name], f"{name}: the global 15s applies to every job"


def test_every_alert_is_tested_firing():
    alerts = {rule["alert"] for rule in rules_of("alert")}
    tested = {
        case["alertname"]
        for path in TEST_FILES
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set(), "alerts without a promtool test where they fire"
    assert tested - alerts == set(), "promtool tests for alerts that do not exist"


def test_every_recording_rule_is_tested():
    tested = {
        scan.name
        for path in TEST_FILES
        for test in load_yaml(path)["tests"]
        for case in test.get("promql_expr_test", [])
        for scan in scan_promql(case["expr"]).selectors
    }
    assert recorded_names() - tested == set()


def test_alerts_have_for_severity_and_annotations_naming_what_is_affected():
    for rule in rules_of("alert"):
        name = rule["alert"]
        assert re.fullmatch(r"Support[A-Z][A-Za-z]+", name), name
        assert "for" in rule, f"{name}: no `for:`"
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description"}, name
        for key in ("summary", "description"):
            assert re.search(r"\$labels\.(tier|job)\b", annotations[key]), f"{name}: {key} names no tier or job"


def test_recording_rule_names_follow_level_metric_operations():
    for rule in rules_of("record"):
        name = rule["record"]
        level, metric, operations = name.split(":")
        assert metric.startswith(("support_", "faststream_")) and re.fullmatch(r"[a-z0-9_]+", operations), name
        # the level names the labels the rule keeps: those of its outermost `by`
        outermost = scan_promql(rule["expr"]).grouping[0]
        assert level == "_".join(outermost), f"{name}: keeps {outermost}"


def test_rules_use_the_metrics_contract():
    recorded = recorded_names()
    problems = []
    for rule in rules_of("expr"):
        name = rule.get("record") or rule.get("alert")
        problems += contract_problems(rule["expr"], name, recorded)
    assert problems == []


@pytest.mark.parametrize(
    "expr, problem",
    [
        ('max by (tier) (support_first_contact_resolution_ratio{window="7d"})', None),
        ("histogram_quantile(0.9, max by (tier, le) (rate(support_resolution_duration_seconds_bucket[5m])))", None),
        ("sum by (job) (rate(support_dead_letters_total[5m])) * 60 > 0 unless up offset 10m", None),
        ('max by (tier) (support_first_contact_resolution{window="7d"})', "not in the contract"),
        ("sum by (tier) (support_backlog_tickets)", "must be aggregated with max"),
        ("support_backlog_tickets", "must be aggregated with max"),
        ("max(sum by (tier) (support_backlog_tickets))", "must be aggregated with max"),
        ('max by (tier) (support_backlog_tickets{window="7d"})', "no label 'window'"),
        ('max by (tier) (support_escalation_ratio{window="1w"})', "is not one of"),
        ("max by (teir) (support_backlog_tickets)", "grouping label 'teir'"),
        ("sum by (job) (rate(support_dead_letters_total_count[5m]))", "not in the contract"),
    ],
)
def test_the_contract_check_catches_mistakes(expr, problem):
    problems = contract_problems(expr, "expr", recorded=set())
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems
