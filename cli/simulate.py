"""Simulate upstream systems and support agents: drive realistic ticket lifecycles through
intake (HTTP and the commands topic; with `--via <connection>`, a connected help desk's
signed webhooks instead of HTTP), send a few deliberately bad commands, then check that
the KPIs the metrics service exports equal a reference computation of the same stream.
Exits 0 when every ticket finished, every bad command came back as a dead letter with its
reason, and every KPI agrees; 1 otherwise. Deterministic for a seed (the plan; not timing)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.intake.core.helpdesks.mapping import HelpdeskError, load_connection
from shared.charter import load_charter
from shared.topics import Topics
from simulator.compare import StreamCopy, check
from simulator.driver import BAD_COMMANDS, Driver, Run
from simulator.helpdesks import MAPPINGS, Helpdesk, HelpdeskAgents
from simulator.plans import plan_tickets

HELP = "drive simulated ticket lifecycles and check the exported KPIs against the truth"
LAPSE_LIMIT_S = 120  # longer L1 targets: no ticket waits for its SLA to lapse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42, help="the same seed plans the same tickets")
    parser.add_argument("--rate", type=float, help="tickets started per second (default: flat out)")
    parser.add_argument("--concurrency", type=int, default=200, help="tickets in flight at once")
    parser.add_argument("--topic-share", type=float, default=0.2, help="share of tickets sent on the commands topic")
    parser.add_argument("--intake-url", default=env("LADDER_INTAKE_URL", "http://127.0.0.1:8001"))
    parser.add_argument("--metrics-url", default=env("LADDER_METRICS_URL", "http://127.0.0.1:8004"))
    parser.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    parser.add_argument("--topic-prefix", default=env("LADDER_TOPIC_PREFIX", ""))
    parser.add_argument(
        "--api-key",
        default=env("LADDER_API_KEY", "ladder-dev-helpdesk-key"),
        help="an intake key allowed every action (default: the local development key)",
    )
    parser.add_argument(
        "--client",
        default=env("LADDER_CLIENT", "helpdesk"),
        help="the name of that key (topic commands are signed as this client)",
    )
    parser.add_argument("--charter", default=env("LADDER_CHARTER"), help="the charter router and escalation run")
    parser.add_argument(
        "--via",
        metavar="CONNECTION",
        help="send the HTTP share of the tickets as this connected help desk would (zendesk, jira, zammad, "
        "freshdesk: the mapping <helpdesks-dir>/CONNECTION.yaml, signed with the secret it names)",
    )
    parser.add_argument(
        "--helpdesks-dir",
        default=env("INTAKE_HELPDESKS_DIR", str(MAPPINGS)),
        help="the mappings intake was given (INTAKE_HELPDESKS_DIR; default deploy/helpdesks)",
    )
    parser.add_argument("--no-check", action="store_true", help="drive only; do not compare the KPIs")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    via = None
    if args.via is not None:
        try:
            connection = load_connection(Path(args.helpdesks_dir) / f"{args.via}.yaml")
        except (HelpdeskError, OSError) as error:
            print(f"ladder simulate: --via {args.via}: {error}", file=sys.stderr)
            return 2
        via = HelpdeskAgents(
            Helpdesk(
                connection.mapping.vendor, connection.secret, connection=connection.name, mapping=connection.mapping
            )
        )
    return asyncio.run(_simulate(args, via))


async def _simulate(args: argparse.Namespace, via: HelpdeskAgents | None = None) -> int:
    console = Console(stderr=args.json)
    charter = load_charter(args.charter)
    lapse = charter.tiers[charter.ladder[0]].sla
    plans = plan_tickets(
        args.seed,
        args.tickets,
        charter,
        topic_share=args.topic_share,
        lapse=max(t.time_in_tier.total_seconds() for t in lapse.values()) <= LAPSE_LIMIT_S,
    )
    topics = Topics.prefixed(args.topic_prefix)
    driver = Driver(
        intake_url=args.intake_url,
        api_key=args.api_key,
        client=args.client,
        bootstrap=args.bootstrap,
        topics=topics,
        concurrency=args.concurrency,
        rate=args.rate,
        via=via,
    )
    started = time.monotonic()
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=args.json,
    ) as progress:
        task = progress.add_task("tickets", total=len(plans))
        result = await driver.run(Run(uuid.uuid4().hex[:10], plans), lambda n: progress.advance(task, n))
    elapsed = time.monotonic() - started
    problems = [f"{len(result.stuck)} tickets made no progress for 60 s"] if result.stuck else []
    for label, _, _, code in BAD_COMMANDS:
        answer = result.dead_letters.get(label)
        if answer is None or answer[0] != code:
            problems.append(f"bad command '{label}': expected dead letter {code}, got {answer}")
    summary: dict[str, Any] = {
        "tickets": len(plans),
        "via": via.desk.connection if via else None,
        "finished": len(result.done),
        "seconds": round(elapsed, 1),
        "tickets_per_second": round(len(result.done) / elapsed, 1) if elapsed else None,
        "personas": dict(Counter(p.persona for p in plans)),
        "commands": result.commands,
        "dead_letters": {label: answer[0] if answer else None for label, answer in result.dead_letters.items()},
    }
    if not args.no_check:
        stream = StreamCopy(args.bootstrap, topics.events)
        try:
            differences, document = await check(args.metrics_url, stream)
        finally:
            await stream.close()
        problems += differences
        summary["kpis_match"] = not differences
        if not args.json:
            console.print(kpi_table(document))
    summary["problems"] = problems
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        console.print(
            f"{len(result.done)}/{len(plans)} tickets finished in {elapsed:.1f}s "
            f"({summary['tickets_per_second']}/s), commands {result.commands}; "
            f"dead letters {summary['dead_letters']}"
            + (f"; the HTTP share came in through the help desk '{summary['via']}'" if via else "")
        )
        for line in problems[:30]:
            console.print(f"[red]✗[/red] {line}")
        if not problems:
            console.print(
                "[green]✓ every KPI exported by the metrics service equals the truth computed from the "
                "stream; every bad command was dead-lettered with its reason[/green]"
            )
    return 1 if problems else 0


def kpi_table(document: dict[str, Any], window: str = "all") -> Table:
    """The per-tier KPIs as exported (they equal the truth when the run reports no difference)."""
    tiers = document["tiers"]
    table = Table(title=f"Per-tier KPIs, window {window} (metrics service = truth)")
    table.add_column("KPI")
    for tier in tiers:
        table.add_column(tier, justify="right")
    kpis = document["windows"][window]["tiers"]

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    def secs(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}s"

    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("arrivals", lambda k: str(k["arrivals"])),
        ("first-contact resolution", lambda k: pct(k["first_contact_resolution_ratio"])),
        ("escalation rate", lambda k: pct(k["escalation_ratio"])),
        ("bounce-back (handoff incomplete)", lambda k: pct(k["bounce_back_ratio"].get("handoff_incomplete"))),
        ("bounce-back (returned with fix)", lambda k: pct(k["bounce_back_ratio"].get("returned_with_fix"))),
        ("time to resolution p50", lambda k: secs(k["resolution_time_seconds"].get("0.5"))),
        ("time to resolution p90", lambda k: secs(k["resolution_time_seconds"].get("0.9"))),
        ("reopen rate", lambda k: pct(k["reopen_ratio"])),
        ("first response mean", lambda k: secs(k["first_response_time_seconds"].get("mean"))),
        ("satisfaction (4-5)", lambda k: pct(k["satisfaction_ratio"])),
        ("SLA breaches", lambda k: str(sum(k["sla_breaches"].values()))),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(kpis[tier]) for tier in tiers))
    table.add_row("backlog (now)", *(str(document["backlog"].get(tier, 0)) for tier in tiers))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
