"""The cyclic garbage collector, paused while a command builds an answer it keeps."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Build thousands of jobs and table rows with the cyclic collector paused.

    They hold no reference cycles, yet every 700 allocations the collector traverses the
    young ones, and its older generations' passes everything built so far: about a
    fifth of what `ant list --all-clusters` spent on 9,000 rows after start-up
    (docs/benchmarks.md, "Several clusters", run 6).
    Reference counting still frees what dies; the collector runs again as before when
    the block ends."""
    if not gc.isenabled():  # paused already (a caller's block, or the embedding program)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
