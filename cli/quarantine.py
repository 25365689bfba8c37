"""`ladder quarantine list|redrive`: outbox records the broker refused (`outbox_quarantine`
in a service's schema), and sending chosen ones again once the cause is fixed (the topic
created, the broker's size limit raised).

A redrive moves the rows back into the outbox in one transaction (delete from the
quarantine, insert into the outbox), so a row is redriven once however often the command
runs; the relay then publishes it like any other record (after the records already
waiting: it leaves behind later records of the same ticket). Events carry their ids, so a
consumer that had seen one anyway changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.db import connect_options, schema_name
from shared.settings import LadderSettings, load

HELP = "list and redrive outbox records the broker refused (outbox_quarantine)"


@dataclass(frozen=True, slots=True)
class Quarantined:
    seq: int
    topic: str
    quarantined_at: datetime
    reason: str
    size: int


async def listing(conn: asyncpg.Connection, schema: str) -> list[Quarantined]:
    rows = await conn.fetch(
        f"SELECT seq, topic, quarantined_at, reason, coalesce(octet_length(key), 0) + coalesce(octet_length(value), 0) "
        f"+ octet_length(headers) FROM {schema_name(schema)}.outbox_quarantine ORDER BY seq"
    )
    return [Quarantined(*row) for row in rows]


async def redrive(conn: asyncpg.Connection, schema: str, seqs: Sequence[int] | None) -> int:
    """Move the chosen rows (all when `seqs` is None) back into the outbox; how many moved."""
    s = schema_name(schema)
    moved = await conn.fetchval(
        f"WITH moved AS (DELETE FROM {s}.outbox_quarantine WHERE $1::bigint[] IS NULL OR seq = ANY($1::bigint[]) "
        "RETURNING seq, topic, key, value, headers, created_at), "
        f"queued AS (INSERT INTO {s}.outbox (topic, key, value, headers, created_at) "
        "SELECT topic, key, value, headers, created_at FROM moved ORDER BY seq RETURNING 1) "
        "SELECT count(*) FROM queued",
        None if seqs is None else list(seqs),
    )
    return int(moved)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    for name, help_text in (("list", "one line per quarantined record"), ("redrive", "queue them again")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument(
            "--schema", required=True, help="the service's schema (intake, router, escalation, metrics)"
        )
        if name == "redrive":
            action.add_argument("seqs", nargs="*", type=int, help="records by seq (as `list` prints)")
            action.add_argument("--all", action="store_true", help="every quarantined record of the schema")
            action.add_argument("--dry-run", action="store_true", help="print what would be queued, change nothing")
            action.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, load(LadderSettings)))


async def _run(args: argparse.Namespace, settings: LadderSettings) -> int:
    conn = await asyncpg.connect(settings.database_url, **connect_options(settings.database_url))
    try:
        records = await listing(conn, args.schema)
        if args.action == "list":
            for record in records:
                at = record.quarantined_at.isoformat()
                print(f"{record.seq}\t{at}\t{record.topic}\t{record.size} B\t{record.reason}")
            print(f"{len(records)} quarantined record(s)", file=sys.stderr)
            return 0
        if not args.all and not args.seqs:
            print("name the records to redrive (seq ...) or --all", file=sys.stderr)
            return 2
        chosen = [r for r in records if args.all or r.seq in args.seqs]
        if not chosen:
            print("nothing to redrive", file=sys.stderr)
            return 1
        if args.dry_run:
            for record in chosen:
                print(f"would queue {record.seq} to {record.topic}")
            print(f"dry run: {len(chosen)} record(s); nothing changed")
            return 0
        if not args.yes and _declined(f"queue {len(chosen)} record(s) again? [y/N] "):
            print("nothing changed")
            return 1
        moved = await redrive(conn, args.schema, [r.seq for r in chosen])
        print(f"queued again: {moved}")
        return 0
    finally:
        await conn.close()


def _declined(question: str) -> bool:
    return input(question).strip().lower() != "y"
