"""How current a table is: the staleness the server's promise is measured in.

A table is filled by one informer per scope. A scope is current while its watch works,
and stale from the moment its watch ended (closed, dropped, refused, or a 410) until
news from the API server arrives again: a list, an event or a bookmark, or a new watch
that has stayed open for ``SETTLE`` seconds (a 410 comes at once; a watch open that
long was accepted, and its events since the last seen resourceVersion arrive in order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

SETTLE = 1.0  # a watch open this long without an error is taken to be current


class Freshness:
    """Per scope: since when its watch has been down (None: up), and since when the
    current watch request has been open."""

    def __init__(self, scopes: Sequence[str], clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.down_since: dict[str, float | None] = dict.fromkeys(scopes)
        self.opened_at: dict[str, float | None] = dict.fromkeys(scopes)

    def opened(self, scope: str) -> None:
        """The scope's watch request was accepted: changes arrive again."""
        self.opened_at[scope] = self._clock()

    def closed(self, scope: str) -> None:
        """The scope's watch ended: changes stop arriving."""
        now = self._clock()
        opened = self.opened_at[scope]
        if self.down_since[scope] is None or (opened is not None and now - opened >= SETTLE):
            self.down_since[scope] = now
        self.opened_at[scope] = None

    def heard(self, scope: str) -> None:
        """A list, an event or a bookmark: the scope equals the API server again."""
        self.down_since[scope] = None

    def staleness(self) -> float:
        """Seconds since the stalest scope was last known current (0: all current)."""
        now = self._clock()
        return max(self._of(scope, now) for scope in self.down_since)

    def _of(self, scope: str, now: float) -> float:
        down, opened = self.down_since[scope], self.opened_at[scope]
        if down is None or (opened is not None and now - opened >= SETTLE):
            return 0.0
        return now - down
