"""Run every `bench/bench_*.py` (or those named) and write bench/results/latest.json.

Each module has `run(quick: bool) -> dict[str, object]`: figures and ratios measured side by side in one run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import bench

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. sandbox backup")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    found = sorted(
        m.name[len("bench_") :] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    chosen = args.names or found
    unknown = set(chosen) - set(found)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {found}")
    report: dict[str, object] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
    }
    for name in chosen:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        figures = module.run(quick=args.quick)
        figures["wall_seconds"] = round(time.perf_counter() - t0, 1)
        report[name] = figures
        for key, value in figures.items():
            print(f"  {key:<48} {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"written {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
