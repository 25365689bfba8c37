"""`python -m tests.chaos [--tickets N]`: one chaos run (tests/chaos/run.py), its report
printed as JSON; exit 0 when the ledger holds, 1 otherwise."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from tests.chaos.run import Options, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=200, help="tickets in flight at once")
    parser.add_argument("--rate", type=float, help="tickets started per second (default: flat out)")
    parser.add_argument("--fault-interval", type=float, default=10.0, help="seconds between two faults")
    parser.add_argument("--broker-down", type=float, default=15.0, help="seconds a killed broker stays down")
    parser.add_argument("--keep-platform", action="store_true", help="leave the cluster and PostgreSQL running")
    parser.add_argument("--report", type=Path, help="also write the report (JSON) to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    report = asyncio.run(
        run(
            Options(
                tickets=args.tickets,
                seed=args.seed,
                concurrency=args.concurrency,
                rate=args.rate,
                fault_interval_s=args.fault_interval,
                broker_down_s=args.broker_down,
                keep_platform=args.keep_platform,
            )
        )
    )
    text = json.dumps(report.as_dict(), indent=2)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
