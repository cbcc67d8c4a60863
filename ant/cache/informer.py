"""Informers: keep a ``Table`` equal to the API server's objects, as client-go's reflector.

For one resource and one scope (cluster-wide, or one namespace):

1. LIST (protobuf, 500 per page). The first list is consistent (no resourceVersion).
2. WATCH from the list's resourceVersion, with bookmarks; every event and bookmark
   moves the last seen resourceVersion.
3. The server ends the watch (its timeout) or the connection drops: WATCH again from
   the last seen resourceVersion; no event is lost or replayed.
4. 410 Gone (the resourceVersion was compacted away, or a restarted API server's watch
   cache does not reach back that far): relist, first "not older than" the last seen
   resourceVersion (cheap, from the server's cache), and if the server refuses that too
   (410 again, or 504 "too large"), a consistent list. The table is replaced by the
   list: objects the watch missed are added, phantoms (deleted during the gap) removed.
   A 410 with no event since the last list waits a backoff first, so that a server
   that refuses every watch is not listed in a loop.
5. Failures (connection refused, 5xx, 429, undecodable frames): exponential backoff with
   jitter, 0.8 s doubling to 30 s, reset after 2 minutes without a failure
   (``ant.kube.watch.Backoff``); then the same step again.

Lists follow the API's paging rules (``Client.list``): the first page may ask "not older
than" N, every next page carries only ``limit`` and ``continue``. While the watch is
down the table's staleness grows (``ant.cache.freshness``), and the server refuses reads
once it is past its promise.

Everything goes through ``ant.kube.client.Client``: one request path. The ant controller
uses the same informers with a label selector (only ant's objects) and a listener that
hears of every change (``on_change``: each event's entry; ``on_relist``: after a list,
when the changes in between are unknown).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ant.cache.metrics import Counter
from ant.cache.store import Entry, Strip, Table, make_entry
from ant.errors import AntError, Gone, ServerTimeout
from ant.kube.client import Client
from ant.kube.watch import Backoff

log = logging.getLogger("ant.cache.informer")

PAGE_SIZE = 500


@dataclass(frozen=True)
class InformerMetrics:
    events: Counter  # kind, type
    relists: Counter  # kind, reason
    errors: Counter  # kind, error class


def field_selector(ignored: Iterable[str]) -> str | None:
    """``metadata.namespace!=a,metadata.namespace!=b``: the server filters them out."""
    parts = [f"metadata.namespace!={ns}" for ns in sorted(ignored)]
    return ",".join(parts) or None


class Informer:
    """List and watch one resource in one scope into its table; ``run`` until stopped."""

    def __init__(
        self,
        client: Client,
        table: Table,
        strip: Strip,
        *,
        scope: str = "",
        ignored: Sequence[str] = (),
        watch_timeout: int = 300,
        metrics: InformerMetrics | None = None,
        stop: threading.Event | None = None,
        backoff: Backoff | None = None,
        label_selector: str | None = None,
        on_change: Callable[[Entry], None] | None = None,
        on_relist: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.kind = table.kind
        self.strip = strip
        self.scope = scope  # "" cluster-wide, else a namespace
        self.field_selector = None if scope or not self.kind.namespaced else field_selector(ignored)
        self.watch_timeout = watch_timeout
        self.metrics = metrics
        self.stop = stop or threading.Event()
        self.backoff = backoff or Backoff()
        self.label_selector = label_selector
        self.on_change = on_change
        self.on_relist = on_relist
        self.last_rv = ""  # the last resourceVersion seen (list, event or bookmark)
        self.lists = 0
        self.applied_since_list = 0  # events and bookmarks

    @property
    def name(self) -> str:
        return f"{self.kind.name}{'/' + self.scope if self.scope else ''}"

    # ---- the loop ---------------------------------------------------------------
    def run(self) -> None:
        need_list = True
        while not self.stop.is_set():
            try:
                if need_list:
                    self.relist()
                    need_list = False
                self.watch_once()
            except Gone as e:
                log.info("%s: %s; relisting", self.name, e)
                self._count_error(e)
                if need_list or not self.applied_since_list:
                    # Refused right after a list: relisting at once could spin on the
                    # API server, so back off as for any failure.
                    self.stop.wait(self.backoff.next_delay())
                need_list = True
            except AntError as e:
                self._count_error(e)
                delay = self.backoff.next_delay()
                log.warning("%s: %s; retrying in %.1fs", self.name, e, delay)
                self.stop.wait(delay)
            except Exception as e:  # a bug must not silently end an informer
                self._count_error(e)
                delay = self.backoff.next_delay()
                log.exception("%s: unexpected error; retrying in %.1fs", self.name, delay)
                self.stop.wait(delay)

    def _count_error(self, e: Exception) -> None:
        if self.metrics:
            self.metrics.errors.inc(self.kind.name, type(e).__name__)

    # ---- list -------------------------------------------------------------------
    def relist(self) -> None:
        """A fresh list into the table: "not older than" the last seen rv, else consistent."""
        first = not self.lists
        if self.last_rv:
            try:
                items, rv = self._list(self.last_rv, "NotOlderThan")
                reason = "expired"
            except (Gone, ServerTimeout) as e:
                log.info("%s: list not older than %s refused (%s)", self.name, self.last_rv, e)
                items, rv = self._list(None, None)
                reason = "expired-consistent"
        else:
            items, rv = self._list(None, None)
            reason = "initial"
        changed, removed = self.table.replace(items, rv, self.scope)
        self.last_rv = rv
        self.lists += 1
        self.applied_since_list = 0
        if self.on_relist:
            self.on_relist()
        if self.metrics and not first:
            self.metrics.relists.inc(self.kind.name, reason)
        log.info(
            "%s: listed %d at resourceVersion %s (%s; %d added or changed, %d removed)",
            self.name,
            self.table.count,
            rv,
            reason,
            changed,
            removed,
        )

    def _list(self, rv: str | None, match: str | None) -> tuple[list[Entry], str]:
        result = self.client.list(
            self.kind.resource,
            self.scope or None,
            field_selector=self.field_selector,
            label_selector=self.label_selector,
            limit=PAGE_SIZE,
            resource_version=rv,
            resource_version_match=match,
        )
        return [make_entry(self.kind, item, self.strip) for item in result.items], (
            result.resource_version
        )

    # ---- watch ------------------------------------------------------------------
    def watch_once(self) -> None:
        """One watch request from the last seen resourceVersion until the server ends it."""
        try:
            for event in self.client.watch(
                self.kind.resource,
                self.scope or None,
                resource_version=self.last_rv,
                field_selector=self.field_selector,
                label_selector=self.label_selector,
                timeout_seconds=self.watch_timeout,
                allow_bookmarks=True,
                on_open=lambda: self.table.freshness.opened(self.scope),
            ):
                self.apply(event.type, event.object, event.resource_version)
                if self.stop.is_set():
                    return
        finally:
            self.table.freshness.closed(self.scope)

    def apply(self, event_type: str, obj: Any, rv: str) -> None:
        entry = None
        if event_type == "BOOKMARK":
            self.table.bookmark(rv, self.scope)
        elif event_type == "DELETED":
            entry = make_entry(self.kind, obj, self.strip)
            self.table.delete(entry, self.scope)
        else:  # ADDED, MODIFIED
            entry = make_entry(self.kind, obj, self.strip)
            self.table.upsert(entry, self.scope)
        if entry is not None and self.on_change:
            self.on_change(entry)
        if rv:
            self.last_rv = rv
        self.applied_since_list += 1
        if self.metrics:
            self.metrics.events.inc(self.kind.name, event_type)


class Informers:
    """Every informer the store needs, each on its own daemon thread."""

    def __init__(self, informers: Sequence[Informer], stop: threading.Event) -> None:
        self.informers = list(informers)
        self.stop = stop
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for informer in self.informers:
            thread = threading.Thread(
                target=informer.run, name=f"informer-{informer.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def close(self, timeout: float = 2.0) -> None:
        """Stop every informer; threads blocked in a watch end with the process."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
