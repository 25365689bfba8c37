"""Write the weekly report: per-tier FCR, escalation, bounce-back, time to resolution and
reopen rate for an ISO week against the weeks before it, and three example handoffs, as one
self-contained HTML file (inline CSS, no script, nothing fetched) and as Markdown.

Every number comes from the metrics service: `GET /v1/kpis/weeks` (the definitions of
`/v1/kpis`, DESIGN §4, with the week as the window) and `GET /v1/handoffs/examples` (read
key; the rule is stated in the report)."""

from __future__ import annotations

import argparse
import html
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cli.kpis import ABSENT, duration, percent
from services.metrics.core.weekly import week_of

HELP = "write the weekly report (HTML and Markdown) from the metrics service"
TIERS = ("L1", "L2", "L3")


def _ratio(name: str, numerator: str, denominator: str) -> Callable[[dict[str, Any]], str]:
    def cell(t: dict[str, Any]) -> str:
        return percent(t[name]) + (f" ({t[numerator]}/{t[denominator]})" if t[denominator] else "")

    return cell


def _bounce(reason: str, denominator: str) -> Callable[[dict[str, Any]], str]:
    def cell(t: dict[str, Any]) -> str:
        shown = percent(t["bounce_back_ratio"].get(reason))
        return shown + (f" ({t['bounces'][reason]}/{t[denominator]})" if t[denominator] else "")

    return cell


# (row, the cell from one tier's KPIs of one week); the definitions: docs/architecture/metrics.md
ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("First-contact resolution", _ratio("first_contact_resolution_ratio", "first_contact_resolutions", "visits_ended")),
    ("Escalation rate", _ratio("escalation_ratio", "escalations", "arrivals")),
    ("Bounce-back: handoff incomplete", _bounce("handoff_incomplete", "escalation_requests")),
    ("Bounce-back: returned with fix", _bounce("returned_with_fix", "escalations")),
    ("Time to resolution, median", lambda t: duration(t["resolution_time_seconds"].get("0.5"))),
    ("Time to resolution, p90", lambda t: duration(t["resolution_time_seconds"].get("0.9"))),
    ("Reopen rate", _ratio("reopen_ratio", "reopens", "resolutions")),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--week", help="ISO week, e.g. 2026-W49 (default: this week, UTC)")
    parser.add_argument("--previous", type=int, default=4, help="weeks to compare with (default: %(default)s)")
    parser.add_argument(
        "--url",
        default=os.environ.get("LADDER_METRICS_URL", "http://127.0.0.1:8004"),
        help="the metrics service (default: $LADDER_METRICS_URL or %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("var/reports"), help="directory for the two files (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    week = args.week or week_of(datetime.now(UTC))
    key = os.environ.get("LADDER_READ_KEY")  # a key with action `read` (the examples are per ticket)
    try:
        with httpx.Client(base_url=args.url, timeout=60) as client:
            report = fetch(client, week, args.previous, key)
    except (httpx.HTTPError, ReportError) as error:
        print(f"ladder report: {error}", file=sys.stderr)
        return 2
    html_path, markdown_path = write(report, args.out)
    print(f"ladder report {week}: {html_path} and {markdown_path}")
    return 0


class ReportError(Exception):
    pass


def fetch(client: httpx.Client, week: str, previous: int, key: str | None) -> dict[str, Any]:
    """What the report shows, as the metrics service answered it."""
    weeks = client.get("/v1/kpis/weeks", params={"week": week, "previous": previous})
    if weeks.status_code != 200:
        raise ReportError(f"/v1/kpis/weeks answered {weeks.status_code}: {weeks.text[:200]}")
    examples: dict[str, Any] = {"rule": None, "examples": [], "missing": "no read key (LADDER_READ_KEY)"}
    if key:
        answer = client.get("/v1/handoffs/examples", params={"week": week}, headers={"Authorization": f"Bearer {key}"})
        if answer.status_code != 200:
            raise ReportError(f"/v1/handoffs/examples answered {answer.status_code}")
        examples = answer.json()
    return {"week": week, "weeks": weeks.json()["weeks"], **examples, "source": str(client.base_url)}


def table(report: dict[str, Any], tier: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """One tier's rows: the header (week names) and, per KPI, a cell per week (the last is `week`)."""
    header = [w["week"] for w in report["weeks"]]
    rows = []
    for label, cell in ROWS:
        rows.append(
            (label, [cell(w["kpis"]["tiers"][tier]) if tier in w["kpis"]["tiers"] else ABSENT for w in report["weeks"]])
        )
    return header, rows


def tiers(report: dict[str, Any]) -> list[str]:
    seen = {tier for w in report["weeks"] for tier in w["kpis"]["tiers"]}
    return [tier for tier in TIERS if tier in seen] + sorted(seen - set(TIERS))


def _period(report: dict[str, Any]) -> str:
    this = report["weeks"][-1]
    return f"{this['since'][:10]} to {this['until'][:10]} (Monday to Monday, UTC)"


def _example_lines(example: dict[str, Any]) -> list[tuple[str, str]]:
    checklist = example["checklist"]
    return [
        ("Handoff", f"{example['from_tier']} → {example['to_tier']} by {example['agent']}, {example['requested_at']}"),
        ("Resolved", f"by {example['resolved_by']} at {example['resolved_at']}, "
         f"{duration(example['seconds_to_resolution'])} after the request, no bounce"),
        ("Problem statement", str(checklist.get("problem_statement") or "")),
        ("Impact", str(checklist.get("impact") or "")),
        ("Steps attempted", "; ".join(checklist.get("steps_attempted") or [])),
        ("Attachments", "; ".join(checklist.get("attachments") or [])),
        ("Hypothesis", example["hypothesis"]),
    ]  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    week = report["week"]
    lines = [
        f"# Ladder weekly report, {week}",
        "",
        f"{_period(report)}; each KPI against the {len(report['weeks']) - 1} weeks before. "
        "Definitions: DESIGN §4 (docs/architecture/metrics.md), with the week as the window; "
        f"numbers from the metrics service ({report['source']}).",
    ]
    for tier in tiers(report):
        header, rows = table(report, tier)
        lines += ["", f"## {tier}", "", "| KPI | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    lines += ["", "## Example handoffs", ""]
    if report.get("missing"):
        lines.append(f"Not shown: {report['missing']}.")
    else:
        lines += [f"Rule: {report['rule']}", ""]
        if not report["examples"]:
            lines.append("No handoff this week meets the rule.")
        for n, example in enumerate(report["examples"], 1):
            lines += [f"### {n}. Ticket {example['ticket_id']}", ""]
            lines += [f"- **{label}:** {_md(value)}" for label, value in _example_lines(example)]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:68rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:2px solid #dde3ee;padding-bottom:.2rem}
p.lead{color:#4a5568;margin-top:0}table{border-collapse:collapse;width:100%;margin:.6rem 0}
th,td{padding:.35rem .6rem;border-bottom:1px solid #e6eaf1;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f6fb;color:#4a5568;font-weight:600}
td.this,th.this{background:#eef6ff;font-weight:600}
.rule{background:#f7f7f2;border-left:4px solid #c9b458;padding:.5rem .8rem}
.example{border:1px solid #e6eaf1;border-radius:6px;padding:.4rem 1rem;margin:.8rem 0}
.example dt{font-weight:600;color:#4a5568}.example dd{margin:0 0 .4rem 0}
footer{color:#718096;margin-top:2rem;font-size:.85rem}
"""


def page(report: dict[str, Any]) -> str:
    e = html.escape
    week = report["week"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Ladder weekly report {e(week)}</title><style>{CSS}</style></head><body>",
        f"<h1>Ladder weekly report, {e(week)}</h1>",
        f"<p class=lead>{e(_period(report))}; each KPI against the {len(report['weeks']) - 1} weeks before "
        "(this week highlighted).</p>",
    ]
    for tier in tiers(report):
        header, rows = table(report, tier)
        last = len(header) - 1
        parts.append(f"<h2>{e(tier)}</h2><table><thead><tr><th>KPI</th>")
        parts += [f"<th{' class=this' if i == last else ''}>{e(h)}</th>" for i, h in enumerate(header)]
        parts.append("</tr></thead><tbody>")
        for label, cells in rows:
            parts.append(f"<tr><td>{e(label)}</td>")
            parts += [f"<td{' class=this' if i == last else ''}>{e(c)}</td>" for i, c in enumerate(cells)]
            parts.append("</tr>")
        parts.append("</tbody></table>")
    parts.append("<h2>Example handoffs</h2>")
    if report.get("missing"):
        parts.append(f"<p>Not shown: {e(report['missing'])}.</p>")
    else:
        parts.append(f"<p class=rule><b>Rule:</b> {e(report['rule'])}</p>")
        if not report["examples"]:
            parts.append("<p>No handoff this week meets the rule.</p>")
        for n, example in enumerate(report["examples"], 1):
            parts.append(f"<div class=example><h3>{n}. Ticket {e(example['ticket_id'])}</h3><dl>")
            parts += [f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in _example_lines(example)]
            parts.append("</dl></div>")
    parts.append(
        "<footer>Definitions: DESIGN §4 (docs/architecture/metrics.md), the week as the window "
        f"[Monday 00:00 UTC, next Monday). Numbers from the metrics service, {e(report['source'])}.</footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / f"ladder-report-{report['week']}.html"
    markdown_path = out / f"ladder-report-{report['week']}.md"
    html_path.write_text(page(report))
    markdown_path.write_text(markdown(report))
    return html_path, markdown_path
