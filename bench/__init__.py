"""ant's benchmarks: ``python -m bench <name> [options]`` (see docs/benchmarks.md).

Each benchmark is a module with a ``main(argv) -> int``; ``bench.__main__`` dispatches.
Results go to ``bench/results/`` (git-ignored) as JSON, and to stdout as markdown.
"""
