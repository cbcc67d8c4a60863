"""Watches that outlive one HTTP request.

The API server ends every watch after its timeout, and connections drop. Like
client-go's reflector, ``follow`` re-watches from the last resourceVersion it
saw (bookmarks included) after a normal close, and after a dropped connection
with capped exponential backoff and jitter. A 410 Gone (the resourceVersion
was compacted away) is raised for the caller to relist: events in between
are lost, and only a fresh list can tell what changed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from ant.errors import TooManyRequests, TransportError
from ant.kube.client import Client, Resource, WatchEvent

T = TypeVar("T")


@dataclass
class Backoff:
    """Exponential backoff with jitter: 0.8 s doubling to 30 s, reset after 2 min healthy."""

    initial: float = 0.8
    cap: float = 30.0
    reset_after: float = 120.0
    _current: float = 0.0
    _last_failure: float = 0.0

    def next_delay(self) -> float:
        now = time.monotonic()
        if self._current == 0.0 or now - self._last_failure > self.reset_after:
            self._current = self.initial
        else:
            self._current = min(self.cap, self._current * 2)
        self._last_failure = now
        return self._current * random.uniform(0.5, 1.0)


def follow(
    client: Client,
    resource: Resource[T],
    resource_version: str,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_seconds: int = 300,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
) -> Iterator[WatchEvent[T]]:
    """Every event after ``resource_version``, across server closes and dropped connections.

    BOOKMARK events are yielded too (they only move the resourceVersion), so a
    caller can record progress. Raises ``Gone`` when it must relist.
    """
    backoff = backoff or Backoff()
    stop = stop or threading.Event()
    rv = resource_version
    while not stop.is_set():
        try:
            for event in client.watch(
                resource,
                namespace,
                resource_version=rv,
                label_selector=label_selector,
                field_selector=field_selector,
                timeout_seconds=timeout_seconds,
            ):
                if event.resource_version:
                    rv = event.resource_version
                yield event
                if stop.is_set():
                    return
        except (TransportError, TooManyRequests):
            stop.wait(backoff.next_delay())
