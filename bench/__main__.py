"""Run the benchmarks named on the command line, or all of them."""

from __future__ import annotations

import importlib
import sys

SUITES = (
    "strategic",
    "ledger",
    "record",
    "tactical",
    "tactical_e2e",
    "notify_api",
    "hotspot",
    "postgis",
    "stream",
    "agreements",
    "load",
)


def main(argv: list[str]) -> None:
    names = argv or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    for name in names:
        print(f"\n## {name}\n", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
