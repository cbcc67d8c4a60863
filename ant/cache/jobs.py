"""The job endpoint's rows: ``ant list`` computed next to the data.

The same query ant makes against the API server (StatefulSets and pods by ant's label
selector, optionally one user's), answered from the store's indexes and joined by
``ant.jobs.model.jobs_from``, so a row's status follows exactly the rules ``ant list``
applies. The preemption count is advanced in memory by the cached ``Preempted`` events,
as ``ant list`` does (a read never writes it back).

Two views: ``table`` (the columns of ``ant list``'s table) and ``full`` (also every label
and annotation of the StatefulSet, from which the client derives the rest of a job for
``-o wide|json|yaml``). In JSON the answer is ``ant list -o json``'s document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ant.cache.selectors import FieldSelector, LabelSelector, parse_fields
from ant.cache.store import Store, decode
from ant.jobs import schema
from ant.jobs.documents import API_VERSION, job_list
from ant.jobs.model import Job, jobs_from

VIEWS = ("table", "full")
KIND = "JobList"


def query_selector(user_label: str | None, selector: str | None) -> str:
    """The label selector ``ant list`` sends for these options."""
    return schema.mine_selector(user_label, selector)


@dataclass(frozen=True)
class Rows:
    jobs: list[Job]
    resource_version: str
    # (namespace, name) -> the StatefulSet's labels, all of them (Job.labels omits ant's)
    labels: dict[tuple[str, str], dict[str, str]]


def compute(
    store: Store,
    namespace: str | None,
    selector: LabelSelector,
    statuses: frozenset[str],
    *,
    events: bool = True,
) -> Rows:
    """ant's jobs in ``namespace`` (None: all) matching ``selector``, sorted by name.

    ``events``: count preemptions from the cached events too (``ant list`` does when its
    user may list events; without, the tally comes from the pods alone).
    """
    sts_table, pod_table = store.table("statefulsets"), store.table("pods")
    sts_entries, rv = sts_table.select(namespace, selector)
    pod_entries, _ = pod_table.select(namespace, selector)
    statefulsets = [decode(sts_table.kind, e.raw) for e in sts_entries]
    pods = [decode(pod_table.kind, e.raw) for e in pod_entries]
    jobs = jobs_from(statefulsets, pods)
    jobs = _tally_preemptions(store, namespace, jobs, pods, events=events)
    if statuses:
        jobs = [j for j in jobs if j.status.value in statuses]
    jobs.sort(key=lambda j: (j.namespace, j.name))
    return Rows(jobs, rv, {e.key: e.labels for e in sts_entries})


def _tally_preemptions(
    store: Store, namespace: str | None, jobs: list[Job], pods: Sequence[Any], *, events: bool
) -> list[Job]:
    """Each job's preemption count as ``ant list -o wide`` computes it."""
    from ant.jobs import queue

    preempted: list[Any] = []
    if events and "events" in store.tables:
        table = store.table("events")
        entries, _ = table.select(namespace, None, _preempted_selector(table.kind.supported_fields))
        preempted = [decode(table.kind, e.raw) for e in entries]
    return queue.tally_preemptions(jobs, preempted, pods)


_PREEMPTED: list[FieldSelector] = []


def _preempted_selector(supported: frozenset[str]) -> FieldSelector:
    if not _PREEMPTED:
        from ant.jobs.queue import PREEMPTED_EVENTS

        _PREEMPTED.append(parse_fields(PREEMPTED_EVENTS, supported))
    return _PREEMPTED[0]


def encode(rows: Rows, view: str) -> bytes:
    """The protobuf answer: ``ant.dev.v1.JobList`` in the Kubernetes envelope."""
    from ant.cache.proto import jobs_pb2
    from ant.kube import codec

    items = []
    full = view == "full"
    for j in rows.jobs:
        row = jobs_pb2.Job(
            name=j.name,
            namespace=j.namespace,
            user=j.user,
            user_full=j.user_full,
            status=j.status.value,
            replicas=j.replicas,
            ready=j.ready,
            pending=j.pending,
            updated=j.updated,
            priority=j.priority,
            created_at=int(j.created_at.timestamp()) if j.created_at else 0,
            nodes=j.nodes,
            preemptions=j.preemptions,
            gang=j.gang,
        )
        if full:
            row.labels.update(rows.labels.get((j.namespace, j.name), {}))
            row.annotations.update(j.annotations)
        items.append(row)
    message = jobs_pb2.JobList(resource_version=rows.resource_version, items=items, view=view)
    return codec.encode_envelope(API_VERSION, KIND, message.SerializeToString())


def document(rows: Rows) -> bytes:
    """The JSON answer: exactly ``ant list -o json``'s document."""
    import json

    return json.dumps(job_list(rows.jobs), separators=(",", ":")).encode()
