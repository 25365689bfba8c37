"""`ladder report` against the real metrics service (a process on the real broker and
database): a week's numbers are metrics' own with the week as the window, the weeks before
are compared, and the example handoffs follow the stated rule (services/metrics/core/weekly.py).

Events are stamped in two past ISO weeks (W44 and W45 of 2026), so the windows do not depend
on today's date. While only W45's tickets exist, W45's KPIs must equal `/v1/kpis`'s `all`
window field by field: the same definitions, bounded by the week."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer

from cli.report import ROWS
from shared.events import HandoffChecklist, TicketEscalationRequested, Tier
from shared.kafka import client_options
from tests.integration.intake.conftest import KEY_CONFIG, KEYS
from tests.integration.metrics.conftest import wait_until
from tests.processes import ROOT, ServiceProcess
from tests.unit.metrics.stories import Story

W44, W45 = datetime(2026, 10, 27, 9, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC)
CHECKLIST = HandoffChecklist(
    impact="every EU customer on SSO", steps_attempted=["re-issued the token"], attachments=["req-7f3a"],
    problem_statement="SSO login loops back to the sign-in page",
)  # fmt: skip


def handed_up(ticket: str, resolved_after: float, hypothesis: str) -> Story:
    """L1 hands up with a complete checklist, L2 resolves `resolved_after` minutes after creation."""
    story = Story(ticket, W45).routed(1, "L1").responded(2, "L1")
    story.add(
        10,
        TicketEscalationRequested(
            ticket_id=ticket, from_tier=Tier.L1, to_tier=Tier.L2, agent_id="ann", checklist=CHECKLIST,
            hypothesis=hypothesis,
        ),
    )  # fmt: skip
    return story.escalated(11, "L1", "L2").routed(11, "L2", "escalation").resolved(resolved_after, "L2")


def this_week(unique: str) -> list[Story]:
    return [
        Story(f"a1-{unique}", W45).routed(1, "L1").responded(5, "L1").resolved(30),
        handed_up(f"e1-{unique}", 70, "the IdP cache keeps the old signing key"),
        handed_up(f"e2-{unique}", 200, "the session cookie is set for the wrong domain"),
        handed_up(f"e3-{unique}", 20, "It's broken!"),  # fastest, but no real hypothesis
        Story(f"b1-{unique}", W45).routed(1, "L1").requested(10, "L1", "L2")
        .bounced(11, "L2", "L1", "handoff_incomplete").routed(11, "L1", "bounce").resolved(40).reopened(100),
    ]  # fmt: skip


def week_before(unique: str) -> list[Story]:
    return [
        Story(f"p1-{unique}", W44).routed(1, "L1").resolved(30),
        Story(f"p2-{unique}", W44).routed(1, "L1").requested(5, "L1", "L2").escalated(6, "L1", "L2")
        .routed(6, "L2", "escalation").resolved(300, "L2"),
    ]  # fmt: skip


def tables(markdown: str) -> dict[tuple[str, str, str], str]:
    """(tier, KPI, week) -> cell, from the report's Markdown tables."""
    cells, tier, header = {}, "", []
    for line in markdown.splitlines():
        if line.startswith("## "):
            tier = line[3:]
        elif line.startswith("| KPI |"):
            header = [c.strip() for c in line.strip("|").split("|")][1:]
        elif line.startswith("| ") and not line.startswith("|---") and header:
            label, *values = [c.strip() for c in line.strip("|").split("|")]
            cells.update({(tier, label, week): value for week, value in zip(header, values, strict=True)})
    return cells


def report(metrics: ServiceProcess, out, week: str = "2026-W45") -> tuple[str, str]:
    subprocess.run(
        [sys.executable, "-m", "cli.main", "report", "--week", week, "--previous", "2", "--url", metrics.url,
         "--out", str(out)],
        cwd=ROOT, env={**metrics.env, "LADDER_READ_KEY": KEYS["lead"]}, check=True, timeout=60,
    )  # fmt: skip
    return (out / f"ladder-report-{week}.md").read_text(), (out / f"ladder-report-{week}.html").read_text()


async def publish(private, stories: list[Story]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=private.bootstrap, **client_options())
    await producer.start()
    try:
        await private.publish(producer, [e for story in stories for e in story.events])
    finally:
        await producer.stop()


async def test_the_weekly_report_shows_the_metrics_services_numbers_for_the_week(private, unique, tmp_path):
    await publish(private, this_week(unique))
    with ServiceProcess("metrics", private.env(METRICS_API_KEYS=KEY_CONFIG)) as metrics:
        await private.consumed()
        async with httpx.AsyncClient(base_url=metrics.url) as client:

            async def settled():  # the refresher's snapshot after everything was applied
                kpis = (await client.get("/v1/kpis")).json()
                return kpis if kpis["windows"]["all"]["tiers"]["L2"]["resolutions"] == 3 else None

            everything = (await wait_until(settled))["windows"]["all"]
            weeks = (await client.get("/v1/kpis/weeks", params={"week": "2026-W45", "previous": 2})).json()
        assert [w["week"] for w in weeks["weeks"]] == ["2026-W43", "2026-W44", "2026-W45"]
        # the week holds every event so far: its KPIs are the all-time ones, field by field
        assert weeks["weeks"][-1]["kpis"]["tiers"] == everything["tiers"]
        assert weeks["weeks"][0]["kpis"]["tiers"]["L1"]["arrivals"] == 0

        markdown, _ = report(metrics, tmp_path)
        cells = tables(markdown)
        for tier in ("L1", "L2", "L3"):
            for label, cell in ROWS:
                assert cells[(tier, label, "2026-W45")] == cell(everything["tiers"][tier]), (tier, label)
        # computed by hand (DESIGN §4): L1 ended 5 visits, 1 at first contact; escalated 3 of
        # 5 arrivals; 1 of 4 requests bounced incomplete; 1 of its 2 resolutions reopened.
        # L2 resolved e3, e1, e2 at 20, 70, 200 minutes after creation (nearest rank).
        assert cells[("L1", "First-contact resolution", "2026-W45")] == "20.0% (1/5)"
        assert cells[("L1", "Escalation rate", "2026-W45")] == "60.0% (3/5)"
        assert cells[("L1", "Bounce-back: handoff incomplete", "2026-W45")] == "25.0% (1/4)"
        assert cells[("L1", "Reopen rate", "2026-W45")] == "50.0% (1/2)"
        assert cells[("L2", "Time to resolution, median", "2026-W45")] == "1h 10m"
        assert cells[("L2", "Time to resolution, p90", "2026-W45")] == "3h 20m"
        assert cells[("L1", "First-contact resolution", "2026-W44")] == "—"

        # the week before arrives: its column fills, this week's numbers stay
        await publish(private, week_before(unique))
        await private.consumed()
        markdown, page = report(metrics, tmp_path)
        again = tables(markdown)
        assert {k: v for k, v in again.items() if k[2] == "2026-W45"} == {
            k: v for k, v in cells.items() if k[2] == "2026-W45"
        }
        assert again[("L1", "First-contact resolution", "2026-W44")] == "50.0% (1/2)"
        assert again[("L2", "Time to resolution, median", "2026-W44")] == "5h 0m"

    # the examples: the rule is stated; e1 then e2 (fastest first); e3's placeholder and b1's
    # incomplete, bounced handoff are left out
    assert "Rule: Escalation requests made this week whose checklist has every item filled" in markdown
    assert re.findall(r"^### \d\. Ticket (\S+)", markdown, re.M) == [f"e1-{unique}", f"e2-{unique}"]
    assert "the IdP cache keeps the old signing key" in markdown and "1h 0m after the request" in markdown
    # one self-contained file: inline CSS, no script, nothing to fetch
    assert "<style>" in page and f"Ticket e1-{unique}" in page
    assert not re.search(r"<script|<link|<img|src=|url\(|@import", page)
