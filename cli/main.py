"""`ladder <command> [options]`. Every command is a module in this package with `HELP`,
`add_arguments(parser)` and `run(args) -> exit status`; `COMMANDS` lists them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import deadletters, keys, kpis, quarantine, report, simulate

COMMANDS = {
    "dead-letters": deadletters,
    "keys": keys,
    "kpis": kpis,
    "quarantine": quarantine,
    "report": report,
    "simulate": simulate,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ladder", description="Ladder, tiered support on Kafka: operator commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in COMMANDS.items():
        command.add_arguments(commands.add_parser(name, help=command.HELP, description=command.__doc__))
    args = parser.parse_args(argv)
    sys.exit(COMMANDS[args.command].run(args))


if __name__ == "__main__":
    main()
