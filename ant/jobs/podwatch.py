"""Waiting on a job's pods with one LIST and one WATCH, never per-pod polling.

``PodTracker`` keeps the current pods matching a selector; ``wait_until`` feeds
it watch events until a condition over all pods holds. API calls stay constant
in the number of replicas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ant.errors import Gone, RequestTimeout
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.watch import follow

Pods = Mapping[str, Any]  # pod name -> Pod message


class PodTracker:
    def __init__(self, client: Client, namespace: str, label_selector: str) -> None:
        self.client = client
        self.namespace = namespace
        self.label_selector = label_selector
        self.pods: dict[str, Any] = {}
        self.resource_version = ""
        self.relist()

    def relist(self) -> None:
        listed = self.client.list(r.PODS, self.namespace, label_selector=self.label_selector)
        self.pods = {p.metadata.name: p for p in listed.items}
        self.resource_version = listed.resource_version

    def wait_until(
        self,
        done: Callable[[Pods], bool],
        timeout: float,
        *,
        on_change: Callable[[Pods], None] | None = None,
        what: str = "pods",
    ) -> Pods:
        """Block until ``done(pods)``; raise ``RequestTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if on_change:
            on_change(self.pods)
        if done(self.pods):
            return self.pods
        stop = threading.Event()
        # The watch must wake up to notice the deadline even when nothing changes.
        timer = threading.Timer(max(0.0, timeout), stop.set)
        timer.daemon = True
        timer.start()
        try:
            while not stop.is_set():
                try:
                    for event in follow(
                        self.client,
                        r.PODS,
                        self.resource_version,
                        self.namespace,
                        label_selector=self.label_selector,
                        timeout_seconds=max(1, min(60, int(deadline - time.monotonic()) + 1)),
                        stop=stop,
                    ):
                        self.resource_version = event.resource_version or self.resource_version
                        if event.type == "BOOKMARK":
                            continue
                        name = event.object.metadata.name
                        if event.type == "DELETED":
                            self.pods.pop(name, None)
                        else:
                            self.pods[name] = event.object
                        if on_change:
                            on_change(self.pods)
                        if done(self.pods):
                            return self.pods
                except Gone:
                    self.relist()
                    if done(self.pods):
                        return self.pods
        finally:
            timer.cancel()
        raise RequestTimeout(f"timed out after {timeout:.0f}s waiting for {what}")


def is_ready(pod: Any) -> bool:
    if pod.metadata.HasField("deletionTimestamp"):
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
