"""Small helpers shared by the tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float = 60.0,
    *,
    state: Callable[[], Any] | None = None,
    every: float = 0.2,
) -> Any:
    """Poll ``probe`` until it returns something truthy, and return that.

    On timeout the test fails naming ``what`` and, when given, the last ``state()``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {state()}" if state else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(every)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
