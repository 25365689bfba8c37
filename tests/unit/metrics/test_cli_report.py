"""`ladder report` (cli/report.py) without services: what it asks metrics for, the default
week, the examples without a key, and text from tickets escaped in the HTML."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import UTC, datetime

import httpx

from cli import report as command
from services.metrics.core.kpis import window_kpis
from services.metrics.core.weekly import week_bounds, week_of, weeks_before

EXAMPLE = {
    "ticket_id": "t-1", "from_tier": "L1", "to_tier": "L2", "agent": "ann",
    "requested_at": "2026-12-01T10:00:00Z", "resolved_at": "2026-12-01T11:00:00Z", "resolved_by": "L2",
    "seconds_to_resolution": 3600.0, "hypothesis": "<script>alert(1)</script> | the cache",
    "checklist": {"impact": "EU", "steps_attempted": ["a"], "attachments": ["b"], "problem_statement": "p"},
}  # fmt: skip


def metrics(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        week = request.url.params["week"]
        if request.url.path == "/v1/handoffs/examples":
            return httpx.Response(200, json={"week": week, "rule": "the rule", "examples": [EXAMPLE]})
        empty = asdict(window_kpis({}, {}, ["L1", "L2", "L3"]))
        names = [*weeks_before(week, int(request.url.params["previous"])), week]
        return httpx.Response(
            200,
            json={
                "weeks": [
                    {"week": w, "since": week_bounds(w)[0].isoformat(), "until": week_bounds(w)[1].isoformat(),
                     "kpis": empty}
                    for w in names
                ]
            },
        )  # fmt: skip

    return httpx.MockTransport(answer)


def test_this_weeks_report_by_default_with_the_examples_escaped(monkeypatch, tmp_path, capsys):
    seen: list[httpx.Request] = []
    real = httpx.Client
    monkeypatch.setattr(command.httpx, "Client", lambda **kw: real(transport=metrics(seen), **kw))
    monkeypatch.setenv("LADDER_READ_KEY", "k")
    args = argparse.Namespace(week=None, previous=2, url="http://metrics", out=tmp_path)
    assert command.run(args) == 0
    week = week_of(datetime.now(UTC))
    assert [(r.url.path, r.url.params["week"]) for r in seen] == [
        ("/v1/kpis/weeks", week),
        ("/v1/handoffs/examples", week),
    ]
    assert seen[1].headers["authorization"] == "Bearer k" and "authorization" not in seen[0].headers
    page = (tmp_path / f"ladder-report-{week}.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    markdown = (tmp_path / f"ladder-report-{week}.md").read_text()
    assert "\\| the cache" in markdown and "Rule: the rule" in markdown
    assert f"| KPI | {' | '.join([*weeks_before(week, 2), week])} |" in markdown
    assert str(tmp_path) in capsys.readouterr().out


def test_without_a_read_key_the_report_says_the_examples_are_not_shown(monkeypatch, tmp_path):
    seen: list[httpx.Request] = []
    real = httpx.Client
    monkeypatch.setattr(command.httpx, "Client", lambda **kw: real(transport=metrics(seen), **kw))
    monkeypatch.delenv("LADDER_READ_KEY", raising=False)
    args = argparse.Namespace(week="2026-W49", previous=4, url="http://metrics", out=tmp_path)
    assert command.run(args) == 0
    assert [r.url.path for r in seen] == ["/v1/kpis/weeks"]
    assert "Not shown: no read key (LADDER_READ_KEY)." in (tmp_path / "ladder-report-2026-W49.md").read_text()


def test_an_unreachable_service_is_exit_status_2(tmp_path, capsys):
    args = argparse.Namespace(week="2026-W49", previous=4, url="http://127.0.0.1:9", out=tmp_path)
    assert command.run(args) == 2
    assert "ladder report:" in capsys.readouterr().err
