"""Checks of the Prometheus and Grafana files under deploy/, with promtool and the metrics
interface contract below. No network and no running services: promtool runs offline.

CONTRACT is the interface the services export and the rules and dashboards depend on
(docs/kpis.md plus the pipeline metrics every service serves). Changing a name
here means changing the services, rules and dashboards with it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


@dataclass(frozen=True)
class Metric:
    type: str  # counter | gauge | histogram
    labels: frozenset[str]
    kpi: bool  # exported by the metrics service from PostgreSQL: same value on every replica


def _m(type_: str, *labels: str, kpi: bool = False) -> Metric:
    return Metric(type_, frozenset(labels), kpi)


CONTRACT: dict[str, Metric] = {
    # KPIs: only the metrics service; replicas are aggregated with max, never sum
    "support_tier_arrivals_total": _m("counter", "tier", kpi=True),
    "support_escalations_total": _m("counter", "tier", "to_tier", "reason", kpi=True),
    "support_bounces_total": _m("counter", "tier", "reason", kpi=True),
    "support_resolutions_total": _m("counter", "tier", kpi=True),
    "support_reopens_total": _m("counter", "tier", kpi=True),
    "support_sla_breaches_total": _m("counter", "tier", "kind", kpi=True),
    "support_first_contact_resolution_ratio": _m("gauge", "tier", "window", kpi=True),
    "support_escalation_ratio": _m("gauge", "tier", "window", kpi=True),
    "support_reopen_ratio": _m("gauge", "tier", "window", kpi=True),
    "support_satisfaction_ratio": _m("gauge", "tier", "window", kpi=True),
    "support_bounce_back_ratio": _m("gauge", "tier", "reason", "window", kpi=True),
    "support_resolution_time_seconds": _m("gauge", "tier", "window", "quantile", kpi=True),
    "support_resolution_duration_seconds": _m("histogram", "tier", kpi=True),
    "support_first_response_time_seconds": _m("gauge", "tier", "window", "statistic", kpi=True),
    "support_resolved_without_escalation_ratio": _m("gauge", "window", kpi=True),
    "support_backlog_tickets": _m("gauge", "tier", kpi=True),
    "support_events_ignored_total": _m("counter", "reason", kpi=True),
    # pipeline: every service, per process
    "support_dead_letters_total": _m("counter", "reason"),
    "support_outbox_pending_records": _m("gauge"),
    "support_outbox_oldest_age_seconds": _m("gauge"),
    "support_outbox_published_total": _m("counter", "topic"),
    "support_outbox_relay_errors_total": _m("counter", "kind"),
    "support_outbox_quarantined_total": _m("counter"),
    "support_outbox_relay_leader": _m("gauge"),
    "support_consumer_lag_records": _m("gauge", "topic", "partition"),
    "support_consumer_events_ignored_total": _m("counter", "reason"),
    "support_stalled": _m("gauge", "part"),
    "faststream_received_messages_total": _m("counter", "app_name", "broker", "handler"),
    "faststream_received_processed_messages_total": _m("counter", "app_name", "broker", "handler", "status"),
    "faststream_received_processed_messages_duration_seconds": _m("histogram", "app_name", "broker", "handler"),
    # intake only
    "support_http_requests_total": _m("counter", "method", "route", "status"),
    "support_http_request_duration_seconds": _m("histogram", "method", "route"),
    # Prometheus' own series per target
    "up": _m("gauge"),
}

# Added to every series by the scrape (prometheus.yml) or by a Kubernetes setup.
TARGET_LABELS = frozenset({"job", "instance", "service", "pod"})
TIERS = ("L0", "L1", "L2", "L3", "L4")
WINDOWS = ("7d", "30d", "all")


def series_names() -> dict[str, tuple[str, Metric]]:
    """Every series name a scrape can produce -> (contract metric name, metric)."""
    names: dict[str, tuple[str, Metric]] = {}
    for name, metric in CONTRACT.items():
        if metric.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[name + suffix] = (name, metric)
        else:
            names[name] = (name, metric)
    return names


def allowed_labels(series: str) -> frozenset[str]:
    name, metric = series_names()[series]
    extra = {"le"} if series == name + "_bucket" else set()
    return metric.labels | TARGET_LABELS | extra


# --- a small PromQL scanner --------------------------------------------------------------
# Enough of PromQL to find the metric names, label matchers, grouping labels and, for each
# selector, the aggregations around it. promtool checks the syntax itself.

AGGREGATORS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"bool", "offset", "and", "or", "unless", "atan2", "inf", "nan"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}@])
""",
    re.VERBOSE,
)


@dataclass
class Selector:
    name: str
    matchers: dict[str, str] = field(default_factory=dict)
    aggregations: tuple[str, ...] = ()  # enclosing aggregation operators, innermost first


@dataclass
class Scan:
    selectors: list[Selector]
    grouping: list[tuple[str, ...]]  # the labels of each by/without/on/... clause, in text order

    @property
    def grouping_labels(self) -> set[str]:
        return {label for clause in self.grouping for label in clause}


def scan_promql(expr: str) -> Scan:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise ValueError(f"cannot scan PromQL at {expr[pos : pos + 30]!r} in {expr!r}")
        pos = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))

    selectors: list[Selector] = []
    grouping: list[tuple[str, ...]] = []
    stack: list[str | None] = []  # what opened each "(": a function or aggregator name, or None
    pending: str | None = None  # an aggregator waiting for its "(" (after `by (...)`)
    i = 0

    def peek(k: int) -> tuple[str, str]:
        return tokens[k] if k < len(tokens) else ("end", "")

    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "ident" and text in GROUPING and peek(i + 1)[1] == "(":
            i += 2
            clause = []
            while peek(i)[1] != ")":
                if peek(i)[0] == "ident":
                    clause.append(peek(i)[1])
                i += 1
            grouping.append(tuple(clause))
            i += 1
            continue
        if kind == "ident" and text in AGGREGATORS and peek(i + 1)[1] in ("(", "by", "without"):
            pending = text
            i += 1
            continue
        if kind == "ident" and peek(i + 1)[1] == "(":  # a function call
            pending = text
            i += 1
            continue
        if kind == "op" and text == "(":
            stack.append(pending)
            pending = None
        elif kind == "op" and text == ")":
            stack.pop()
        elif kind == "op" and text == "{":
            # matchers of a selector; `{...}` without a name would select by labels only
            selector = selectors[-1] if i > 0 and tokens[i - 1][0] == "ident" else None
            i += 1
            while peek(i)[1] != "}":
                label, op, value = peek(i), peek(i + 1), peek(i + 2)
                if label[0] != "ident" or op[1] not in ("=", "!=", "=~", "!~") or value[0] != "string":
                    raise ValueError(f"unexpected label matcher near {label[1]!r} in {expr!r}")
                if selector is not None:
                    selector.matchers[label[1]] = value[1][1:-1]
                i += 3
                if peek(i)[1] == ",":
                    i += 1
        elif kind == "ident" and text not in KEYWORDS and text not in GROUPING:
            aggregations = tuple(name for name in reversed(stack) if name in AGGREGATORS)
            selectors.append(Selector(text, aggregations=aggregations))
        i += 1
    return Scan(selectors, grouping)


def contract_problems(expr: str, where: str, recorded: set[str]) -> list[str]:
    """What in EXPR breaks the contract: unknown metrics or labels, KPI metrics not under max."""
    problems = []
    names = series_names()
    known_labels = set(TARGET_LABELS) | {"le"} | {label for m in CONTRACT.values() for label in m.labels}
    scan = scan_promql(expr)
    for selector in scan.selectors:
        if selector.name in recorded:
            continue
        if selector.name not in names:
            problems.append(f"{where}: metric {selector.name!r} is not in the contract")
            continue
        allowed = allowed_labels(selector.name)
        for label, value in selector.matchers.items():
            if label not in allowed:
                problems.append(f"{where}: {selector.name} has no label {label!r}")
            elif label == "window" and not value.startswith("$") and value not in WINDOWS:
                problems.append(f"{where}: {selector.name}{{window={value!r}}} is not one of {WINDOWS}")
        metric = names[selector.name][1]
        if metric.kpi and (not selector.aggregations or selector.aggregations[0] != "max"):
            problems.append(
                f"{where}: KPI metric {selector.name} must be aggregated with max over "
                f"replicas (innermost aggregation: {selector.aggregations[:1] or 'none'})"
            )
    for label in scan.grouping_labels - known_labels:
        problems.append(f"{where}: grouping label {label!r} is not a label of any metric")
    return problems


# --- promtool ----------------------------------------------------------------------------


def promtool(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: apt-get install prometheus (deploy/local/install.sh does)")
    return subprocess.run([exe, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_promtool_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def recorded_names() -> set[str]:
    rules = load_yaml(PROMETHEUS_DIR / "rules" / "recording.yml")
    return {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}
