"""Print the per-tier KPI table from the metrics service (`GET /v1/kpis`): durations like
"3h 12m", ratios as percentages, "—" where there is no sample yet; `--json` for scripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import httpx

HELP = "print the per-tier KPIs from the metrics service"
WINDOWS = ("7d", "30d", "all")
ABSENT = "—"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("LADDER_METRICS_URL", "http://127.0.0.1:8004"),
        help="the metrics service (default: $LADDER_METRICS_URL or %(default)s)",
    )
    parser.add_argument(
        "--window",
        choices=WINDOWS,
        help="KPIs of the events of the last 7 or 30 days, or of all (table: 7d; JSON: every window)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    url = f"{args.url.rstrip('/')}/v1/kpis"
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError as error:
        print(f"ladder kpis: cannot reach the metrics service at {url} ({type(error).__name__})", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"ladder kpis: {url} answered {response.status_code}", file=sys.stderr)
        return 2
    document = response.json()
    if args.json:
        if args.window:
            document = {key: value for key, value in document.items() if key != "windows"} | {
                "window": args.window,
                **document["windows"][args.window],
            }
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(render(document, args.window or "7d"))
    return 0


def duration(seconds: float | None) -> str:
    """The two largest units: "45s", "12m 5s", "3h 12m", "2d 4h"."""
    if seconds is None:
        return ABSENT
    total = round(seconds)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if total >= size:
            return f"{total // size}{unit} {total % size // smaller_size}{smaller}"
    return f"{total}s"


def percent(ratio: float | None) -> str:
    return ABSENT if ratio is None else f"{ratio * 100:.1f}%"


Row = tuple[str, Callable[[dict[str, Any]], str]]
ROWS: list[Row] = [
    ("Arrivals (visits started)", lambda t: str(t["arrivals"])),
    ("First-contact resolution", lambda t: percent(t["first_contact_resolution_ratio"])),
    ("Escalation rate", lambda t: percent(t["escalation_ratio"])),
    ("Bounce-back: handoff incomplete", lambda t: percent(t["bounce_back_ratio"].get("handoff_incomplete"))),
    ("Bounce-back: returned with fix", lambda t: percent(t["bounce_back_ratio"].get("returned_with_fix"))),
    ("Time to resolution, median", lambda t: duration(t["resolution_time_seconds"].get("0.5"))),
    ("Time to resolution, p90", lambda t: duration(t["resolution_time_seconds"].get("0.9"))),
    ("Reopen rate", lambda t: percent(t["reopen_ratio"])),
    ("First response, mean", lambda t: duration(t["first_response_time_seconds"].get("mean"))),
    ("First response, median", lambda t: duration(t["first_response_time_seconds"].get("median"))),
    ("Satisfaction (rated 4-5)", lambda t: percent(t["satisfaction_ratio"])),
    ("Resolutions", lambda t: str(t["resolutions"])),
    ("Escalations out", lambda t: str(t["escalations"])),
    ("SLA breaches", lambda t: str(sum(t["sla_breaches"].values()))),
]


def render(document: dict[str, Any], window: str) -> str:
    kpis, tiers = document["windows"][window], document["tiers"]
    label_width = max(len(label) for label, _ in [*ROWS, ("Backlog (now)", str)])
    rows = [(label, [cell(kpis["tiers"][tier]) for tier in tiers]) for label, cell in ROWS]
    rows.append(("Backlog (now)", [str(document["backlog"].get(tier, 0)) for tier in tiers]))
    width = max([len(tier) for tier in tiers] + [len(value) for _, values in rows for value in values]) + 2
    lines = [
        f"Ladder KPIs, window {window} (computed {document['computed_at']})",
        "",
        " " * label_width + "".join(tier.rjust(width) for tier in tiers),
    ]
    lines += [label.ljust(label_width) + "".join(value.rjust(width) for value in values) for label, values in rows]
    ignored = ", ".join(f"{reason} {count}" for reason, count in kpis["ignored"].items()) or "none"
    lines += [
        "",
        f"Resolved without escalation: {percent(kpis['resolved_without_escalation_ratio'])} "
        f"of {kpis['resolved_tickets']} resolved tickets",
        f"Ignored events: {ignored}",
    ]
    return "\n".join(lines)
