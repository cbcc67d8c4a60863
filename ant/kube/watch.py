"""Watches that outlive one HTTP request.

The API server ends every watch after its timeout, and connections drop. Like
client-go's reflector, ``follow`` re-watches from the last resourceVersion it
saw (bookmarks included) after a normal close, and after a dropped connection
with capped exponential backoff and jitter. A 410 Gone (the resourceVersion
was compacted away) is raised for the caller to relist: events in between
are lost, and only a fresh list can tell what changed.

``watch_until`` is the one wait-for-a-condition loop on top: follow, relist on
410, give up at a deadline.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ant.errors import DeadlineExceeded, Gone, TooManyRequests, TransportError
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
        except DeadlineExceeded:
            raise  # the command's time is up: no more re-watching
        except (TransportError, TooManyRequests):
            stop.wait(backoff.next_delay())


# A watch request asks the server to end it by then, so the deadline is noticed without
# events; capped so a long wait still re-watches (and sees a dead connection) each minute.
_MAX_WATCH_SECONDS = 60


def watch_until(
    client: Client,
    resource: Resource[T],
    resource_version: str,
    on_event: Callable[[WatchEvent[T]], bool],
    relist: Callable[[], tuple[str, bool]],
    timeout: float,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> bool:
    """Follow ``resource`` from ``resource_version`` until a condition holds: True then,
    False once ``timeout`` seconds have passed without it.

    ``on_event`` sees every event (bookmarks too: they only move the resourceVersion) and
    says whether the condition holds now. After a 410 Gone, ``relist()`` reads afresh and
    returns its resourceVersion and whether the condition holds; watching goes on from there.
    """
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    # The watch must wake up to notice the deadline even when nothing changes.
    timer = threading.Timer(max(0.0, timeout), stop.set)
    timer.daemon = True
    timer.start()
    rv = resource_version
    try:
        while not stop.is_set():
            remaining = int(deadline - time.monotonic()) + 1
            try:
                for event in follow(
                    client,
                    resource,
                    rv,
                    namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    timeout_seconds=max(1, min(_MAX_WATCH_SECONDS, remaining)),
                    stop=stop,
                ):
                    if on_event(event):
                        return True
            except Gone:
                rv, done = relist()
                if done:
                    return True
    finally:
        timer.cancel()
    return False
