"""`make bench [BENCH=...]`: `python -m bench [pipeline|intake|router|escalation|metrics] [options]`.

pipeline (the default) is the whole system: lifecycles/s, events/s, command-to-KPI latency,
peak memory, and a bare Kafka passthrough as the baseline. The others measure one service;
each writes var/bench/<name>.json. `python -m bench <name> --help` lists its options."""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "pipeline": "bench.pipeline",
    "intake": "bench.intake",
    "router": "bench.router",
    "escalation": "bench.escalation",
    "metrics": "bench.metrics_projection",
    "soak": "bench.soak",
    "ladder_page": "bench.ladder_page",
}


def main() -> None:
    args = sys.argv[1:]
    if args and not args[0].startswith("-") and args[0] not in BENCHES:
        raise SystemExit(f"unknown benchmark {args[0]!r}; one of: {', '.join(BENCHES)}")
    name = args.pop(0) if args and args[0] in BENCHES else "pipeline"
    sys.argv = [f"bench {name}", *args]
    importlib.import_module(BENCHES[name]).main()


if __name__ == "__main__":
    main()
