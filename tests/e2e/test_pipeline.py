"""The whole pipeline, end to end, through intake's HTTP API and the real router, escalation
and metrics processes (tests/e2e/conftest.py): scripted tickets whose KPIs are computed by
hand, the charter's rules as the tickets' event histories show them, a simulation whose
exported KPIs equal the truth of the stream, and the dead-letter topic holding exactly the
bad commands sent on purpose."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from shared.kafka import client_options, topic_partitions
from simulator.compare import StreamCopy, check
from tests.e2e.conftest import API_KEY, CHARTER, HELPDESK_SECRETS
from tests.processes import ROOT, free_port
from tests.unit.deploy.test_grafana import DASHBOARD, queries, substitute

pytestmark = pytest.mark.e2e
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
COMPLETE = {
    "impact": "all users of the workspace",
    "steps_attempted": ["cleared cache", "reproduced"],
    "attachments": ["req-7f3c"],
    "problem_statement": "Login loops after SSO",
}
INCOMPLETE = {"impact": "x", "steps_attempted": ["restarted"]}


class Histories:
    """Every ticket's events as the stream delivers them; `until` waits for one to appear."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.events: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Histories:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, **client_options()
        )
        await self._consumer.start()
        partitions = await topic_partitions(self.bootstrap, self.topic)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            async with self._changed:
                for records in batches.values():
                    for record in records:
                        kind = dict(record.headers)["ce_type"].decode()
                        self.events.setdefault(record.key.decode(), []).append((kind, orjson.loads(record.value)))
                self._changed.notify_all()

    async def until(
        self,
        ticket: str,
        kind: str,
        match: Callable[[dict], bool] = lambda _: True,
        count: int = 1,
        timeout: float = 90,
    ) -> dict[str, Any]:
        def found() -> list[dict]:
            return [body for k, body in self.events.get(ticket, []) if k == kind and match(body)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()[count - 1]

    def of(self, ticket: str, kind: str) -> list[dict[str, Any]]:
        return [body for k, body in self.events.get(ticket, []) if k == kind]


async def test_scripted_tickets_give_hand_computed_kpis(ladder, platform):
    """52 tickets down every path of the charter. Every count and ratio below is worked out
    by hand from the script (comments); durations come from the clock and are checked
    against the reference computation of the stream."""
    async with (
        httpx.AsyncClient(base_url=ladder.url("intake"), headers=HEADERS, timeout=30) as http,
        Histories(platform.kafka_bootstrap_servers, ladder.topics.events) as histories,
    ):

        async def create(intent: str, priority: str = "P3", blocked: bool = False) -> str:
            body = {
                "customer_id": "acme",
                "channel": "email",
                "subject": "Scripted",
                "intent": intent,
                "priority": priority,
                "customer_blocked": blocked,
            }
            response = await http.post("/v1/tickets", json=body)
            assert response.status_code == 201, response.text
            return response.json()["ticket_id"]

        async def send(ticket: str, path: str, body: dict) -> None:
            response = await http.post(f"/v1/tickets/{ticket}/{path}", json=body)
            assert response.status_code == 202, response.text

        async def work(ticket: str, tier: str, resolve: bool = True) -> None:
            await send(ticket, "responses", {"tier": tier, "agent_id": f"agent-{tier}"})
            if resolve:
                await send(
                    ticket, "resolution", {"tier": tier, "agent_id": f"agent-{tier}", "resolution_code": "fixed"}
                )

        def routed_to(tier: str, reason: str | None = None) -> Callable[[dict], bool]:
            return lambda body: body["tier"] == tier and (reason is None or body["reason"] == reason)

        async def l1(i: int) -> str:  # 12: L1 resolves; 6 rated 5, 3 rated 2; 2 reopened and resolved again
            ticket = await create("login")
            await histories.until(ticket, "ticket.routed", routed_to("L1", "rule"))
            await work(ticket, "L1")
            await histories.until(ticket, "ticket.resolved")
            if i < 9:
                await send(ticket, "rating", {"score": 5 if i < 6 else 2})
            if i >= 10:
                await send(ticket, "reopen", {})
                await histories.until(ticket, "ticket.routed", routed_to("L1", "reopen"))
                await work(ticket, "L1")
            return ticket

        async def handoff(i: int) -> str:  # 8: complete handoff to L2; 5 resolved there, 3 returned with a fix
            ticket = await create("login")
            await histories.until(ticket, "ticket.routed", routed_to("L1"))
            await work(ticket, "L1", resolve=False)
            await send(
                ticket,
                "escalations",
                {
                    "from_tier": "L1",
                    "to_tier": "L2",
                    "agent_id": "a",
                    "checklist": COMPLETE,
                    "hypothesis": "expired IdP certificate",
                },
            )
            await histories.until(ticket, "ticket.routed", routed_to("L2", "escalation"))
            if i < 5:
                await work(ticket, "L2")
            else:
                await work(ticket, "L2", resolve=False)
                await send(ticket, "returns", {"from_tier": "L2", "agent_id": "b", "fix_summary": "rotated cert"})
                await histories.until(ticket, "ticket.routed", routed_to("L1", "bounce"))
                await work(ticket, "L1")
            return ticket

        async def sloppy(skip: bool) -> str:  # 6 incomplete, 2 skipping a level: bounced, then L1 resolves
            ticket = await create("login")
            await histories.until(ticket, "ticket.routed", routed_to("L1"))
            await work(ticket, "L1", resolve=False)
            body = (
                {"checklist": COMPLETE, "hypothesis": "expired IdP certificate", "to_tier": "L3"}
                if skip
                else {"checklist": INCOMPLETE, "hypothesis": "It's broken!", "to_tier": "L2"}
            )
            await send(ticket, "escalations", {"from_tier": "L1", "agent_id": "a", **body})
            await histories.until(ticket, "ticket.bounced")
            await send(ticket, "resolution", {"tier": "L1", "agent_id": "a", "resolution_code": "fixed"})
            return ticket

        async def straight(intent: str, tier: str, reason: str, blocked: bool = False) -> str:
            ticket = await create(intent, blocked=blocked)
            routed = await histories.until(ticket, "ticket.routed", routed_to(tier, reason))
            if routed["communication_owner"]:
                await send(ticket, "responses", {"tier": routed["communication_owner"], "agent_id": "c"})
            await work(ticket, tier)
            return ticket

        async def lapse() -> str:  # 4 P1 tickets nobody at L1 answers: both L1 SLAs breach, it moves to L2
            ticket = await create("login", priority="P1")
            await histories.until(ticket, "ticket.routed", routed_to("L2", "escalation"), timeout=120)
            await work(ticket, "L2")
            return ticket

        groups = await asyncio.gather(
            asyncio.gather(*(l1(i) for i in range(12))),
            asyncio.gather(*(handoff(i) for i in range(8))),
            asyncio.gather(*(sloppy(skip=False) for _ in range(6)), *(sloppy(skip=True) for _ in range(2))),
            asyncio.gather(*(straight("api_errors", "L2", "rule") for _ in range(6))),  # straight to L2
            asyncio.gather(*(straight("data_loss", "L3", "jump", blocked=True) for _ in range(5))),
            asyncio.gather(*(lapse() for _ in range(4))),
            asyncio.gather(*(straight("question", "L1", "rule") for _ in range(4))),  # an intent nobody declared
            asyncio.gather(*(straight("regression", "L3", "rule") for _ in range(5))),  # a suspected bug
        )
        l1s, handoffs, sloppies, _, jumps, lapses, triaged, bugs = groups
        everyone = [t for group in groups for t in group]
        for ticket in everyone:
            await histories.until(ticket, "ticket.resolved", count=2 if ticket in l1s[10:] else 1)

        # The charter's rules, as each ticket's history shows them (router and escalation together).
        assert {histories.of(t, "ticket.routed")[0]["queue"] for t in triaged} == {"l1-triage"}
        assert {histories.of(t, "ticket.routed")[0]["queue"] for t in bugs} == {"l3-suspected-bugs"}
        for ticket in jumps:
            first = histories.of(ticket, "ticket.routed")[0]
            assert (first["tier"], first["reason"], first["communication_owner"]) == ("L3", "jump", "L1")
        for ticket in handoffs:
            (escalated,) = histories.of(ticket, "ticket.escalated")
            assert (escalated["from_tier"], escalated["to_tier"], escalated["reason"]) == ("L1", "L2", "handoff")
        for ticket in handoffs[5:]:
            (bounce,) = histories.of(ticket, "ticket.bounced")
            assert (bounce["reason"], bounce["to_tier"], bounce["fix_summary"]) == (
                "returned_with_fix",
                "L1",
                "rotated cert",
            )
        for ticket in sloppies[:6]:
            (bounce,) = histories.of(ticket, "ticket.bounced")
            assert bounce["reason"] == "handoff_incomplete"
            assert set(bounce["missing"]) == {"attachments", "problem_statement", "hypothesis"}
            assert [r["tier"] for r in histories.of(ticket, "ticket.routed")] == ["L1"]  # it never moved
        for ticket in sloppies[6:]:
            assert histories.of(ticket, "ticket.bounced")[0]["missing"] == ["skip_level"]
        for ticket in lapses:
            breaches = histories.of(ticket, "ticket.sla_breached")
            assert sorted((b["tier"], b["kind"]) for b in breaches) == [
                ("L1", "first_response"),
                ("L1", "time_in_tier"),
            ]
            (escalated,) = histories.of(ticket, "ticket.escalated")  # exactly once
            assert escalated["reason"] == "sla_breach"
        assert not any(histories.of(t, "ticket.sla_breached") for t in everyone if t not in lapses)

        stream = StreamCopy(platform.kafka_bootstrap_servers, ladder.topics.events)
        try:
            differences, kpis = await check(ladder.url("metrics"), stream)
        finally:
            await stream.close()
    assert not differences, differences[:20]  # durations and all: the exported KPIs are the truth

    for window in ("7d", "30d", "all"):
        tiers = kpis["windows"][window]["tiers"]
        l1, l2, l3 = tiers["L1"], tiers["L2"], tiers["L3"]
        # Arrivals. L1: 12 + 2 reopens, 8 handoffs + 3 returns, 8 sloppy, 4 lapses, 4 triaged = 41.
        # L2: 8 handoffs, 6 straight, 4 lapses = 18. L3: 5 jumps, 5 bugs = 10.
        assert (l1["arrivals"], l2["arrivals"], l3["arrivals"]) == (41, 18, 10)
        # First contact. L1: 10 of the first 12 (2 reopened) + the 2 reopened visits + the 3 returns
        # + the 4 triaged = 19 of 41 ended visits. L2: 5 + 6 + 4 = 15 of 18. L3: 10 of 10.
        assert (
            l1["first_contact_resolution_ratio"],
            l2["first_contact_resolution_ratio"],
            l3["first_contact_resolution_ratio"],
        ) == (19 / 41, 15 / 18, 1.0)
        # Escalated from L1: 8 handoffs + 4 SLA breaches = 12 of 41 arrivals; none above.
        assert (l1["escalation_ratio"], l2["escalation_ratio"], l3["escalation_ratio"]) == (12 / 41, 0.0, 0.0)
        # Bounced into L1: 3 returned with a fix of 12 escalated; 8 incomplete of 16 requests.
        assert l1["bounce_back_ratio"] == {"returned_with_fix": 3 / 12, "handoff_incomplete": 8 / 16}
        assert l2["bounce_back_ratio"] == {} and l3["bounce_back_ratio"] == {}
        # Resolutions: L1 14 + 3 + 8 + 4 = 29, L2 5 + 6 + 4 = 15, L3 10; L1's 2 reopened.
        assert (l1["resolutions"], l2["resolutions"], l3["resolutions"]) == (29, 15, 10)
        assert (l1["reopen_ratio"], l2["reopen_ratio"], l3["reopen_ratio"]) == (2 / 29, 0.0, 0.0)
        assert (l1["satisfaction_ratio"], l2["satisfaction_ratio"]) == (6 / 9, None)  # all ratings were L1's
        assert l1["sla_breaches"] == {"first_response": 4, "time_in_tier": 4}
        # Resolved without escalation: 52 resolved, 12 escalated.
        assert kpis["windows"][window]["resolved_without_escalation_ratio"] == 40 / 52
    assert kpis["backlog"] == {"L1": 0, "L2": 0, "L3": 0}


async def test_a_simulation_exports_the_truth_and_dead_letters_exactly_the_bad_commands(ladder, platform, tmp_path):
    """...and the real Prometheus, scraping the services meanwhile, has data for every
    recording rule and every dashboard panel."""
    async with prometheus(ladder, tmp_path) as query:
        await simulate_and_check(ladder, platform)
        await check_rules_and_panels(query)


async def simulate_and_check(ladder, platform) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(ROOT / ".venv" / "bin" / "ladder"),
            "simulate",
            "--tickets",
            "300",
            "--seed",
            "7",
            "--json",
            "--intake-url",
            ladder.url("intake"),
            "--metrics-url",
            ladder.url("metrics"),
            "--topic-prefix",
            ladder.prefix,
            "--charter",
            str(CHARTER),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": platform.kafka_bootstrap_servers},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert summary["finished"] == 300 and summary["kpis_match"] and not summary["problems"]
    assert summary["commands"]["topic"] > 0 and summary["commands"]["http"] > 0

    consumer = AIOKafkaConsumer(
        bootstrap_servers=platform.kafka_bootstrap_servers, enable_auto_commit=False, **client_options()
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(platform.kafka_bootstrap_servers, ladder.topics.dead_letter)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records = []
        while sum(ends.values()) > len(records):
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records += batch
    finally:
        await consumer.stop()
    codes = sorted(dict(r.headers)["dlq_code"].decode() for r in records)
    # exactly the five sent on purpose, each with its reason; nothing else was dead-lettered
    assert codes == ["invalid_command", "not_json", "unauthenticated", "unknown_command", "unknown_ticket"]
    assert all(dict(r.headers)["dlq_service"] == b"intake" and dict(r.headers)["dlq_reason"] for r in records)


async def test_simulate_via_a_help_desk_exports_the_truth(ladder, platform):
    """`ladder simulate --via zendesk` (what `DEMO_VIA=zendesk make demo` runs): the HTTP share
    of the tickets comes in as Zendesk's signed webhooks, the rest on the commands topic; every
    lifecycle finishes and the exported KPIs equal the truth of the stream. (Last in this
    module: the tests above count this module's tickets and dead letters.)"""
    result = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "cli.main", "simulate", "--via", "zendesk", "--tickets", "60", "--seed", "11"),
            *("--json", "--intake-url", ladder.url("intake"), "--metrics-url", ladder.url("metrics")),
            *("--topic-prefix", ladder.prefix, "--charter", str(CHARTER)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, **HELPDESK_SECRETS, "KAFKA_BOOTSTRAP_SERVERS": platform.kafka_bootstrap_servers},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert (summary["via"], summary["finished"], summary["kpis_match"], summary["problems"]) == (
        "zendesk",
        60,
        True,
        [],
    )
    assert summary["commands"]["webhook"] > 60 and summary["commands"]["topic"] > 0
    assert summary["commands"]["http"] == 0


@asynccontextmanager
async def prometheus(ladder, directory):
    """The real Prometheus (Debian's) with the project's rules, scraping the four services every
    second; yields a query function."""
    port = free_port()
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")]
    for job in config["scrape_configs"]:
        service = job["job_name"]
        target = f"127.0.0.1:{port}" if service == "prometheus" else ladder.url(service).removeprefix("http://")
        job["static_configs"][0]["targets"] = [target]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; it runs beside the test
        [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:

            async def query(expr: str) -> list:
                answer = (await api.get("/api/v1/query", params={"query": expr})).json()
                assert answer["status"] == "success", (expr, answer)
                return answer["data"]["result"]

            for _ in range(60):  # all five targets up
                await asyncio.sleep(1)
                try:
                    up = await query("up")
                except httpx.TransportError:
                    continue
                if len(up) == 5 and all(r["value"][1] == "1" for r in up):
                    break
            else:
                raise AssertionError("Prometheus did not scrape all five targets")
            yield query
    finally:
        process.terminate()
        process.wait(30)


async def check_rules_and_panels(query) -> None:
    """Every recording rule and every dashboard panel's query returns data."""
    await asyncio.sleep(3)  # a few more scrapes and rule evaluations after the last change
    recording = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / "recording.yml").read_text())
    rules = [rule["record"] for group in recording["groups"] for rule in group["rules"]]
    empty = [rule for rule in rules if not await query(rule)]
    assert not empty, f"recording rules without data: {empty}"
    panels = [(where, substitute(target["expr"])) for where, target in queries(json.loads(DASHBOARD.read_text()))]
    empty = [where for where, expr in panels if not await query(expr)]
    assert not empty, f"dashboard queries without data: {empty}"
