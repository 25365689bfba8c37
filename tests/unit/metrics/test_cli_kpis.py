"""`ladder kpis` (cli/kpis.py): durations, percentages, the table, JSON, and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from cli import kpis as command
from cli.main import main
from services.metrics.core.kpis import Total, snapshot
from services.metrics.core.visits import duration_bucket
from services.metrics.handlers.http import snapshot_json


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        (0, "0s"),
        (0.4, "0s"),
        (45, "45s"),
        (60, "1m 0s"),
        (725, "12m 5s"),
        (11520, "3h 12m"),
        (86399, "23h 59m"),
        (187200, "2d 4h"),
        (3196800, "37d 0h"),
    ],
)
def test_durations_show_their_two_largest_units(seconds, shown):
    assert command.duration(seconds) == shown


def test_ratios_show_as_percentages():
    assert [command.percent(r) for r in (None, 0.0, 19 / 33, 1.0)] == ["—", "0.0%", "57.6%", "100.0%"]


def document() -> dict:
    totals = {
        ("arrival", "L1", ""): Total(33),
        ("visit_end", "L1", ""): Total(33, 19),
        ("resolution", "L1", str(duration_bucket(11_520_000_000))): Total(2, 0, 23_040_000_000),
        ("first_response", "L1", str(duration_bucket(725_000_000))): Total(1, 0, 725_000_000),
        ("arrival", "L2", ""): Total(4),
        ("ticket_resolved", "", ""): Total(4, 3),
        ("ignored", "", "stale"): Total(2),
    }
    ranked = {
        ("resolution", "L1", 0.5): 11_520_000_000,
        ("resolution", "L1", 0.9): 11_520_000_000,
        ("first_response", "L1", 0.5): 725_000_000,
    }
    kpis = snapshot(
        datetime(2026, 3, 2, 9, tzinfo=UTC),
        {"7d": totals, "30d": {}, "all": totals},
        {"7d": ranked, "30d": {}, "all": ranked},
        {"L2": 4},
    )
    return json.loads(json.dumps(snapshot_json(kpis)))


def test_the_table_has_a_row_per_kpi_and_a_column_per_tier():
    lines = command.render(document(), "7d").splitlines()
    assert lines[0] == "Ladder KPIs, window 7d (computed 2026-03-02T09:00:00Z)"
    assert lines[2].split() == ["L1", "L2", "L3"]
    rows = {line[:32].strip(): line[32:].split() for line in lines[3:] if line.strip()}
    assert rows["Arrivals (visits started)"] == ["33", "4", "0"]
    assert rows["First-contact resolution"] == ["57.6%", "—", "—"]
    assert rows["Escalation rate"] == ["0.0%", "0.0%", "—"]
    assert rows["Time to resolution, median"] == ["3h", "12m", "—", "—"]
    assert rows["First response, mean"] == ["12m", "5s", "—", "—"]
    assert rows["Backlog (now)"] == ["0", "4", "0"]
    assert lines[-2:] == ["Resolved without escalation: 75.0% of 4 resolved tickets", "Ignored events: stale 2"]
    assert "Resolved without escalation: — of 0 resolved tickets" in command.render(document(), "30d")


def serve(monkeypatch, answer) -> None:
    def get(url, timeout):
        assert url == "http://metrics.test:8004/v1/kpis"
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(command.httpx, "get", get)


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(["kpis", "--url", "http://metrics.test:8004/", *argv])
    return done.value.code


def test_json_is_the_service_document_or_one_window_of_it(monkeypatch, capsys):
    serve(monkeypatch, httpx.Response(200, json=document()))
    assert run("--json") == 0
    assert json.loads(capsys.readouterr().out) == document()
    assert run("--json", "--window", "all") == 0
    one = json.loads(capsys.readouterr().out)
    assert one["window"] == "all" and one["tiers"]["L1"]["arrivals"] == 33 and "windows" not in one
    assert run() == 0
    assert capsys.readouterr().out.startswith("Ladder KPIs, window 7d")


def test_an_unreachable_or_unready_service_is_one_line_and_status_2(monkeypatch, capsys):
    serve(monkeypatch, httpx.ConnectError("refused"))
    assert run() == 2
    assert capsys.readouterr().err == (
        "ladder kpis: cannot reach the metrics service at http://metrics.test:8004/v1/kpis (ConnectError)\n"
    )
    serve(monkeypatch, httpx.Response(503, json={"detail": "KPIs not computed yet"}))
    assert run() == 2
    assert "answered 503" in capsys.readouterr().err
