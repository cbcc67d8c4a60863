"""``python -m bench [name [options]]``: run one benchmark, or all of them at default sizes."""

from __future__ import annotations

import importlib
import sys

# name -> module with `main(argv: list[str]) -> int`; imported only when run.
BENCHMARKS = {
    "list": "bench.listing",
    "startup": "bench.startup",
    "rollout": "bench.rollout",
    "cache": "bench.cache",
    "sweep": "bench.sweep",
    "gangs": "bench.gangs",
    "controller": "bench.controller",
    "clusters": "bench.clusters",
    "ownjobs": "bench.ownjobs",
    "placement": "bench.placement",
}


def main(argv: list[str]) -> int:
    if not argv:
        # `make bench`: everything at its defaults; stop at the first failure.
        for name, module in BENCHMARKS.items():
            print(f"# bench {name}", flush=True)
            code = importlib.import_module(module).main([])
            if code:
                return int(code)
        return 0
    name, *rest = argv
    if name not in BENCHMARKS:
        names = ", ".join(BENCHMARKS)
        print(f"usage: python -m bench [{' | '.join(BENCHMARKS)}] [options]", file=sys.stderr)
        if name not in ("-h", "--help"):
            print(f"unknown benchmark {name!r} (known: {names})", file=sys.stderr)
            return 2
        return 0
    return int(importlib.import_module(BENCHMARKS[name]).main(rest))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
