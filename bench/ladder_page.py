"""The ladder page with many tickets: how long it takes to load in Chromium, and (with
`--screenshots DIR`) the README's pictures of the page and of a weekly report.

`python -m bench ladder_page [--tickets 100000] [--days 60]` projects realistic histories
(bench/metrics_projection.py's generator and consumer path, read model included) into a
fresh schema, starts the real metrics service on it, and opens `/ladder` in Debian's
Chromium (Playwright, `executable_path=/usr/bin/chromium`) `--rounds` times, each in a new
browser context (nothing cached). Per load, from the browser's performance timing: DOM
ready, the load event, and the page showing its numbers (`ladder-loaded`, marked when the
first refresh has drawn everything), and each API call the page makes. Medians and maxima
in var/bench/ladder_page.json. Numbers only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from bench.metrics_projection import DATABASE_URL, ROOT, project, service_on
from services.metrics.core.weekly import week_of
from shared.db import create_pool, drop_schemas

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 1000}
TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const shown = performance.getEntriesByName("ladder-loaded")[0];
  const api = performance.getEntriesByType("resource").filter((r) => r.name.includes("/v1/"));
  return {
    dom_ready_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd, shown_ms: shown.startTime,
    api_ms: Object.fromEntries(api.map((r) => [new URL(r.name).pathname, r.responseEnd - r.startTime])),
  };
}"""


async def load(browser: Browser, url: str) -> dict[str, Any]:
    context = await browser.new_context(viewport=VIEWPORT)  # a new context: a cold cache
    try:
        page = await context.new_page()
        await page.goto(f"{url}/ladder")
        await page.wait_for_function("performance.getEntriesByName('ladder-loaded').length > 0", timeout=120_000)
        timing: dict[str, Any] = await page.evaluate(TIMING)
        return timing
    finally:
        await context.close()


async def screenshots(browser: Browser, url: str, out: Path) -> dict[str, str]:
    """The page (window `all`, a ticket's timeline open) and the last full week's report."""
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(f"{url}/ladder")
    await page.select_option("#window", "all")
    await page.wait_for_function("performance.getEntriesByName('ladder-loaded').length > 0")
    await page.fill("#key", os.environ.get("LADDER_READ_KEY", "ladder-dev-lead-key"))
    await page.fill("#ticket", "b")
    await page.press("#ticket", "Enter")
    await page.wait_for_selector("#timeline li")
    await page.screenshot(path=out / "ladder-page.png", full_page=True)
    week = week_of(datetime.now(UTC) - timedelta(days=7))
    reports = ROOT / "var" / "reports"
    command = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "cli.main", "report", "--week", week, "--url", url, "--out", str(reports)],
        cwd=ROOT,
        env={"LADDER_READ_KEY": "ladder-dev-lead-key", **os.environ},
    )
    if await command.wait() != 0:
        raise SystemExit("ladder report failed")
    report = await browser.new_page(viewport={"width": 1100, "height": 1000})
    await report.goto((reports / f"ladder-report-{week}.html").resolve().as_uri())
    await report.screenshot(path=out / "weekly-report.png", full_page=True)
    return {"page": str(out / "ladder-page.png"), "report": str(out / "weekly-report.png"), "week": week}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    schema = args.schema or f"bench_page_{uuid.uuid4().hex[:8]}"
    result: dict[str, Any] = {"tickets": args.tickets, "days": args.days, "schema": schema}
    try:
        if not args.skip_projection:
            print(f"projecting {args.tickets:,} tickets over {args.days} days into {schema} ...", file=sys.stderr)
            result["projection"] = await project(schema, args.tickets, args.days, args.seed, read_model=True)
            pool = await create_pool(DATABASE_URL, min_size=1, max_size=1)
            for table in ("sample", "ticket_now", "ticket_event"):  # what autovacuum does after a bulk load
                await pool.execute(f"VACUUM ANALYZE {schema}.{table}")
            await pool.close()
        async with service_on(schema) as (_, url), async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                loads = [await load(browser, url) for _ in range(args.rounds)]
                if args.screenshots:
                    result["screenshots"] = await screenshots(browser, url, args.screenshots)
            finally:
                await browser.close()
        result["page"] = {
            name: {
                "median": round(statistics.median(x[name] for x in loads)),
                "max": round(max(x[name] for x in loads)),
            }
            for name in ("dom_ready_ms", "load_ms", "shown_ms")
        }
        result["page"]["api_ms_median"] = {
            path: round(statistics.median(x["api_ms"].get(path, 0) for x in loads)) for path in loads[0]["api_ms"]
        }
    finally:
        if not args.keep:
            await drop_schemas(DATABASE_URL, schema)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60, help="tickets are created evenly over this many days")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="page loads timed")
    parser.add_argument("--schema", help="project into (or, with --skip-projection, read) this schema")
    parser.add_argument("--skip-projection", action="store_true", help="only time the page")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--screenshots", type=Path, help="save the page's and a weekly report's pictures here")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "ladder_page.json")
    args = parser.parse_args()
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
