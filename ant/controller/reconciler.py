"""One reconcile: read a job from the informers' tables, decide, write the step.

Reads come from memory (the informers keep them current); only the step's writes go
to the API server: one conditional PATCH of the StatefulSet (its resourceVersion as
precondition; a 409 means our view was stale: the key is retried and decided again),
then pod deletions (by uid) or gate removals, or the job's deletion when its TTL is
up. A step is therefore safe to repeat: if the controller dies after the PATCH, the
next leader sees what it recorded and does the rest (``ant.jobs.transitions``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ant.cache.metrics import Counter, Histogram
from ant.cache.selectors import parse_labels
from ant.cache.store import Entry, Strip, Table, decode, make_entry
from ant.errors import Conflict, NotFound
from ant.jobs import schema
from ant.jobs.transitions import Signal, Step, decide, job_patch, pod_signal, ungate_patch
from ant.kube import resources as r
from ant.kube.client import Client

log = logging.getLogger("ant.controller")

JobKey = tuple[str, str]  # namespace, name

# Fault injection for the failover test (docs/controller.md): after the job PATCH of a
# step of this kind, hang before its pod actions, as if the process froze mid-transition.
PAUSE_AFTER_ENV = "ANT_CONTROLLER_PAUSE_AFTER"


@dataclass(frozen=True)
class ReconcileMetrics:
    duration: Histogram  # result
    transitions: Counter  # kind
    writes: Counter  # verb, resource


class Reconciler:
    def __init__(
        self,
        client: Client,
        statefulsets: Table,
        pods: Table,
        metrics: ReconcileMetrics,
        *,
        strip: Strip | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.strip = strip or Strip()
        self.statefulsets = statefulsets
        self.pods = pods
        self.metrics = metrics
        self.now = now
        self.pause_after = os.environ.get(PAUSE_AFTER_ENV, "")
        # --after: job -> the jobs waiting for it, learnt as the waiting jobs are reconciled.
        self._waiting_on: dict[JobKey, set[JobKey]] = {}
        # What pods said as they changed (pod uid -> signal), until a reconcile of their job
        # took it: the StatefulSet replaces a Succeeded pod at once, and with it the exit.
        self._seen: dict[JobKey, dict[str, Signal]] = {}
        self._lock = threading.Lock()

    def dependants(self, key: JobKey) -> set[JobKey]:
        with self._lock:
            return set(self._waiting_on.get(key, ()))

    def note(self, pod_entry: Entry) -> JobKey | None:
        """A pod changed: keep what it says about its replica; returns its job."""
        job = pod_entry.labels.get(schema.JOB)
        if not job:
            return None
        key = (pod_entry.namespace, job)
        signal = pod_signal(decode(self.pods.kind, pod_entry.raw))
        if signal is not None:
            with self._lock:
                self._seen.setdefault(key, {})[signal.uid] = signal
        return key

    def reconcile(self, key: JobKey) -> float | None:
        """Make the job's next step; returns when to look again (seconds), if ever."""
        started = time.perf_counter()
        result = "error"
        try:
            recheck, result = self._reconcile(key)
            return recheck
        except Conflict:
            result = "conflict"
            raise
        finally:
            self.metrics.duration.observe(time.perf_counter() - started, result)

    def _reconcile(self, key: JobKey) -> tuple[float | None, str]:
        with self._lock:
            seen = self._seen.pop(key, {})
        try:
            return self._decide_and_write(key, list(seen.values()))
        except BaseException:
            with self._lock:  # not acted on: keep it for the next attempt
                self._seen[key] = {**seen, **self._seen.get(key, {})}
            raise

    def _decide_and_write(self, key: JobKey, seen: list[Signal]) -> tuple[float | None, str]:
        namespace, name = key
        entry = self.statefulsets.get(namespace, name)
        if entry is None:
            return None, "gone"
        sts = decode(self.statefulsets.kind, entry.raw)
        after = sts.metadata.annotations.get(schema.AFTER, "")
        if after:
            self._learn_dependencies(key, after)
        pods, _ = self.pods.select(namespace, parse_labels(f"{schema.JOB}={name}"))
        decision = decide(
            sts,
            [decode(self.pods.kind, p.raw) for p in pods],
            self._phase_in(namespace),
            self.now(),
        )
        if decision.step is None:
            return decision.recheck_after, "idle"
        self._execute(decision.step, sts)
        self.metrics.transitions.inc(decision.step.kind)
        return decision.recheck_after, "changed"

    def _phase_in(self, namespace: str) -> Callable[[str], str | None]:
        def phase_of(name: str) -> str | None:
            entry = self.statefulsets.get(namespace, name)
            return None if entry is None else entry.labels.get(schema.PHASE, "")

        return phase_of

    def _learn_dependencies(self, key: JobKey, after: str) -> None:
        with self._lock:
            for dependency in filter(None, after.split(",")):
                self._waiting_on.setdefault((key[0], dependency), set()).add(key)

    # ---- writes ---------------------------------------------------------------------
    def _execute(self, step: Step, sts: Any) -> None:
        meta = sts.metadata
        namespace, name = meta.namespace, meta.name
        log.info("job %s/%s: %s (%s)", namespace, name, step.kind, step.reason)
        if step.delete_job:
            self._write("delete", "statefulsets")
            with suppress(NotFound, Conflict):  # gone already, or a new job of that name
                self.client.delete(r.STATEFULSETS, name, namespace, uid=meta.uid)
            self._write("delete", "services")
            with suppress(NotFound):
                self.client.delete(r.SERVICES, name, namespace)
            return
        if step.patches_job:
            self._write("patch", "statefulsets")
            patch = job_patch(step, meta.resourceVersion)
            updated = self.client.patch(r.STATEFULSETS, name, patch, namespace)
            # Our own write, before the watch brings it: the next reconcile of this job
            # starts from it instead of conflicting on the version it replaced.
            self.statefulsets.offer(make_entry(self.statefulsets.kind, updated, self.strip))
            if self.pause_after == step.kind:
                log.warning("%s=%s: pausing mid-transition", PAUSE_AFTER_ENV, step.kind)
                threading.Event().wait()
        for pod in step.delete_pods:
            self._write("delete", "pods")
            with suppress(NotFound, Conflict):  # gone, or already replaced (uid changed)
                self.client.delete(r.PODS, pod.name, namespace, uid=pod.uid)
        for pod in step.ungate_pods:
            self._write("patch", "pods")
            with suppress(NotFound):
                self.client.patch(r.PODS, pod.name, ungate_patch(pod), namespace)

    def _write(self, verb: str, resource: str) -> None:
        self.metrics.writes.inc(verb, resource)
