"""The ladder page in a real headless browser (Debian's Chromium driven by Playwright, never
its own browser download): it loads with no console error and no request leaving the
machine, its numbers equal /v1/kpis, a ticket's timeline opens from the search, and a
screenshot is saved under var/ for people to look at."""

from __future__ import annotations

from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from playwright.async_api import async_playwright

from shared.kafka import client_options
from tests.integration.intake.conftest import KEY_CONFIG, KEYS
from tests.integration.metrics.test_read_api import jumped
from tests.processes import ServiceProcess
from tests.unit.metrics.stories import Story

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"


def pct(ratio: float | None) -> str:
    return "–" if ratio is None else f"{100 * ratio:.1f}%"


async def test_the_ladder_page_shows_the_kpis_and_opens_a_timeline(private, unique):
    ticket = f"page-{unique}"
    stories = [
        jumped(ticket),
        Story(f"a-{unique}").routed(1, "L1").responded(3, "L1").resolved(30),
        Story(f"b-{unique}").routed(1, "L1").requested(5, "L1", "L2").escalated(6, "L1", "L2").routed(7, "L2")
        .resolved(90, "L2"),
        Story(f"c-{unique}").routed(1, "L1").resolved(20).reopened(40).routed(41, "L1").resolved(60),
    ]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=private.bootstrap, **client_options())
    await producer.start()
    try:
        await private.publish(producer, [e for story in stories for e in story.events])
    finally:
        await producer.stop()
    with ServiceProcess("metrics", private.env(METRICS_API_KEYS=KEY_CONFIG)) as metrics:
        await private.consumed()
        async with httpx.AsyncClient(base_url=metrics.url) as client:
            kpis = (await client.get("/v1/kpis")).json()
        errors: list[str] = []
        outside: list[str] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(metrics.url) else outside.append(r.url))
            await page.goto(f"{metrics.url}/ladder")
            await page.select_option("#window", "all")
            await page.wait_for_selector("body[data-loaded=true]")
            await page.wait_for_function("document.querySelectorAll('#cards .card').length >= 3")
            kpis = (await httpx.AsyncClient(base_url=metrics.url).get("/v1/kpis")).json()
            for tier in ("L1", "L2", "L3"):
                expected = kpis["windows"]["all"]["tiers"][tier]
                card = page.locator(f'.card[data-tier="{tier}"]')
                assert await card.locator('[data-kpi="resolutions"]').inner_text() == str(expected["resolutions"])
                assert await card.locator('[data-kpi="fcr"]').inner_text() == pct(
                    expected["first_contact_resolution_ratio"]
                )
                assert await card.locator('[data-kpi="escalation"]').inner_text() == pct(expected["escalation_ratio"])

            await page.fill("#key", KEYS["lead"])
            await page.fill("#ticket", ticket[:9])
            await page.click("#search button")
            await page.wait_for_selector('#timeline li[data-type="ticket.routed"]')
            assert await page.locator("#timeline li").count() == 2
            assert "updates by L1" in await page.locator("#found").inner_text()
            (ROOT / "var").mkdir(exist_ok=True)
            await page.screenshot(path=str(ROOT / "var" / "ladder-page.png"), full_page=True)
            await browser.close()
        assert errors == [] and outside == []
