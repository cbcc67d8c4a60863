"""Waiting on a job's pods with one LIST and one WATCH, never per-pod polling.

``PodTracker`` keeps the current pods matching a selector; ``wait_until`` feeds
it watch events until a condition over all pods holds. API calls stay constant
in the number of replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ant.errors import RequestTimeout
from ant.kube import resources as r
from ant.kube.client import Client, WatchEvent
from ant.kube.watch import watch_until

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
        if on_change:
            on_change(self.pods)
        if done(self.pods):
            return self.pods

        def on_event(event: WatchEvent[Any]) -> bool:
            self.resource_version = event.resource_version or self.resource_version
            if event.type == "BOOKMARK":
                return False
            name = event.object.metadata.name
            if event.type == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = event.object
            if on_change:
                on_change(self.pods)
            return done(self.pods)

        def relist() -> tuple[str, bool]:
            self.relist()
            return self.resource_version, done(self.pods)

        if watch_until(
            self.client,
            r.PODS,
            self.resource_version,
            on_event,
            relist,
            timeout,
            self.namespace,
            label_selector=self.label_selector,
        ):
            return self.pods
        raise RequestTimeout(f"timed out after {timeout:.0f}s waiting for {what}")


def is_ready(pod: Any) -> bool:
    if pod.metadata.HasField("deletionTimestamp"):
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
