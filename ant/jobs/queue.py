"""Waiting for capacity: the queue of jobs with unscheduled pods, and preemption tracking.

The queue (``ant queue``) is built from one LIST each of ant's StatefulSets, the pods
that hold or want resources (not Succeeded/Failed), the nodes and the PriorityClasses,
run concurrently and joined in memory:

- a job waits when some of its pods are not scheduled (not bound to a node);
- the order is the scheduler's: pod priority (highest first), then submission time
  (oldest first; ties within a second by namespace and name). Among pods of equal
  priority the real scheduler orders by when each pod last entered its queue, which
  for pods that keep waiting follows submission order; see docs/queueing.md;
- a job with some pods scheduled and some not is *partial*: a training job needs all
  its pods, so what the scheduled ones hold is idle;
- the scheduler's reason is the ``PodScheduled=False`` condition of the job's first
  unscheduled pod (e.g. ``0/8 nodes are available: 8 Insufficient google.com/tpu.``);
- capacity per accelerator resource: allocatable on Ready, schedulable nodes, and what
  the pods in scope request, scheduled and pending.

Preemptions. When the scheduler preempts a pod, it gives the victim a ``DisruptionTarget``
condition (reason ``PreemptionByScheduler``), deletes it, and records a ``Preempted`` event
on it; the StatefulSet then creates a new pod, which waits. A *time* the job was preempted
is one burst of preemptions: victims of one job less than ``PREEMPTION_GAP`` apart count
once (a 16-pod job losing all its pods to one high-priority job was preempted once, not
16 times).

A read never writes. The count a read shows is the tally on the StatefulSet
(``ant.dev/preemptions`` and ``ant.dev/last-preempted-at``, kept by a writer that watches
all the time, such as an ant controller), advanced in memory by the preemptions the read
can still see: ``Preempted`` events (one LIST with a field selector, made only when the
output shows the count; events expire, after 1 h by default) merged by pod uid with the
pods' ``DisruptionTarget`` conditions. Counting is idempotent: only preemptions newer than
``last-preempted-at`` are added, so a tally and the events it was made from agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from ant.errors import Forbidden
from ant.jobs import kueue, schema
from ant.jobs.capacity import (
    Capacity,
    NodeUsage,
    Usage,
    accelerators_in,
    capacity,
    cluster_usage,
    holding_pods,
    pod_requests,
)
from ant.jobs.documents import rfc3339
from ant.jobs.gang import Engine
from ant.jobs.kueue import Quota
from ant.jobs.model import Job, JobStatus, jobs_from, parse_time
from ant.jobs.scope import across
from ant.kube import resources as r
from ant.kube.client import Client

PREEMPTION_GAP = timedelta(seconds=30)
# Pods that hold or want resources: finished ones hold nothing.
LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
PREEMPTED_EVENTS = "reason=Preempted,involvedObject.kind=Pod"


@dataclass(frozen=True)
class Waiting:
    """One job of the queue."""

    position: int  # 1-based, among every waiting job in scope (before any user filter)
    job: Job
    priority_value: int
    pending: int  # pods not scheduled
    replicas: int
    requests: Mapping[str, Fraction]  # per pod
    waiting_since: datetime | None
    reason: str
    message: str
    # A Kueue job (ant.jobs.kueue): its LocalQueue and positions, from the visibility API.
    kueue_queue: str = ""
    kueue_position: int | None = None
    cluster_queue_position: int | None = None

    @property
    def partial(self) -> bool:
        return 0 < self.pending < self.replicas

    @property
    def status(self) -> str:
        """Queued (a gang waiting for admission), Partial or Pending."""
        if self.job.status is JobStatus.QUEUED:
            return JobStatus.QUEUED.value
        return JobStatus.PARTIAL.value if self.partial else JobStatus.PENDING.value

    @property
    def scheduled(self) -> int:
        return self.replicas - self.pending

    def pending_requests(self, resource: str) -> Fraction:
        return self.requests.get(resource, Fraction(0)) * self.pending

    def held(self, resource: str) -> Fraction:
        """What the scheduled pods hold (idle until the whole job is scheduled)."""
        return self.requests.get(resource, Fraction(0)) * self.scheduled


@dataclass(frozen=True)
class Queue:
    namespace: str | None  # None: every namespace
    items: tuple[Waiting, ...]
    capacity: tuple[Capacity, ...] = ()
    nodes_visible: bool = True  # False: listing nodes was forbidden, capacity unknown
    usage: Usage = field(default_factory=lambda: Usage(""))  # the cluster's, for free capacity
    skipped: tuple[str, ...] = ()  # -A: namespaces the user may not read
    # The quota of the ClusterQueues of the Kueue jobs in scope (none without them, or
    # when they cannot be read).
    quotas: tuple[Quota, ...] = ()
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


# ---- reading ---------------------------------------------------------------------------
def get_queue(
    client: Client,
    namespace: str | None,
    *,
    user_label: str | None = None,
    resources: Sequence[str] = (),
    track_preemptions: bool = False,
    cached_usage: Callable[[], Sequence[NodeUsage] | None] | None = None,
    named: Callable[[], Sequence[str]] = list,
) -> Queue:
    """The waiting jobs in ``namespace`` (None: all), optionally only one user's.

    ``track_preemptions``: also list the Preempted events, to count preemptions (in memory).
    Free capacity is the cluster's (``ant.jobs.capacity``): in a namespace, one more list
    of every pod that holds resources, if the user may; else ``cached_usage`` (the ant
    cache's node totals), else unknown. All namespaces: cluster-wide lists, or when those
    are forbidden, those of every namespace the user may read (``ant.jobs.scope``; the
    candidates ``named`` when namespaces cannot be listed either).
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        nodes = pool.submit(_optional_list, client, r.NODES)
        classes = pool.submit(_optional_list, client, r.PRIORITY_CLASSES)
        # With -A the pods in scope are the cluster's already, when they can be listed.
        everywhere = pool.submit(holding_pods, client) if namespace is not None else None
        if namespace is None:
            found = across(client, lambda ns: _lists(client, ns, track_preemptions), named)
            scope = ScopeLists.merge(found.results.values())
            skipped = found.skipped
        else:
            scope, skipped = _lists(client, namespace, track_preemptions), ()
        ant_pods = [p for p in scope.pods if _is_ant_pod(p)]
        jobs = jobs_from(scope.statefulsets, ant_pods)
        if track_preemptions:
            jobs = tally_preemptions(jobs, scope.events, ant_pods)
        node_items = nodes.result()
        if everywhere is not None:
            cluster_pods = everywhere.result()
        else:
            cluster_pods = scope.pods if found.everywhere else None
        queue = build_queue(
            scope.statefulsets,
            jobs,
            scope.pods,
            node_items or [],
            classes.result() or [],
            namespace=namespace,
            resources=resources,
            usage=cluster_usage(node_items, cluster_pods, cached_usage),
        )
    queue = replace(queue, skipped=skipped, nodes_visible=node_items is not None)
    if any(w.job.gang == Engine.KUEUE for w in queue.items):
        queue = kueue.annotate(client, queue)
    return only_user(queue, user_label) if user_label else queue


@dataclass(frozen=True)
class ScopeLists:
    """What the queue reads of one scope (a namespace, or all at once)."""

    statefulsets: list[Any]
    pods: list[Any]  # not finished
    events: list[Any]  # Preempted, when asked for

    @staticmethod
    def merge(scopes: Iterable[ScopeLists]) -> ScopeLists:
        merged = ScopeLists([], [], [])
        for s in scopes:
            merged.statefulsets.extend(s.statefulsets)
            merged.pods.extend(s.pods)
            merged.events.extend(s.events)
        return merged


def _lists(client: Client, namespace: str | None, track_preemptions: bool) -> ScopeLists:
    with ThreadPoolExecutor(max_workers=3) as pool:
        statefulsets = pool.submit(
            client.list, r.STATEFULSETS, namespace, label_selector=schema.mine_selector()
        )
        pods = pool.submit(client.list, r.PODS, namespace, field_selector=LIVE_PODS)
        events = pool.submit(preemption_events, client, namespace) if track_preemptions else None
        return ScopeLists(
            list(statefulsets.result().items),
            list(pods.result().items),
            events.result() if events is not None else [],
        )


def only_user(queue: Queue, user_label: str) -> Queue:
    """One user's waiting jobs; positions stay those in the whole queue."""
    return replace(queue, items=tuple(w for w in queue.items if w.job.user == user_label))


def _optional_list(client: Client, resource: Any) -> list[Any] | None:
    """A cluster-scoped list a user may not be allowed to read: None when forbidden."""
    try:
        return list(client.list(resource).items)
    except Forbidden:
        return None


def _is_ant_pod(pod: Any) -> bool:
    return bool(pod.metadata.labels.get(schema.MANAGED_BY) == schema.MANAGED_BY_VALUE)


def build_queue(
    statefulsets: Sequence[Any],
    jobs: Sequence[Job],
    pods: Iterable[Any],
    nodes: Iterable[Any],
    priority_classes: Iterable[Any],
    *,
    namespace: str | None,
    resources: Sequence[str] = (),
    now: datetime | None = None,
    usage: Usage | None = None,
) -> Queue:
    """Pure: the queue from listed objects (``jobs`` from ``jobs_from`` over the same lists);
    ``usage``: the cluster's, for free capacity (unknown when None)."""
    pods = list(pods)
    nodes = list(nodes)
    class_values = {pc.metadata.name: pc.value for pc in priority_classes}
    templates = {
        (s.metadata.namespace, s.metadata.name): s.spec.template.spec for s in statefulsets
    }
    pods_by_job: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for pod in pods:
        job = pod.metadata.labels.get(schema.JOB)
        if job and _is_ant_pod(pod):
            pods_by_job[(pod.metadata.namespace, job)].append(pod)

    waiting: list[tuple[tuple[Any, ...], Waiting]] = []
    for job in jobs:
        if job.status is JobStatus.TERMINATING or job.pending == 0:
            continue
        key = (job.namespace, job.name)
        template = templates.get(key)
        job_pods = pods_by_job.get(key, [])
        value = _priority_value(template, job_pods, class_values)
        unscheduled = sorted(
            (
                p
                for p in job_pods
                if not p.spec.nodeName and not p.metadata.HasField("deletionTimestamp")
            ),
            key=_pod_index,
        )
        reason, message = _scheduler_reason(unscheduled, job)
        since = [_time(p.metadata.creationTimestamp) for p in unscheduled]
        waiting_since = min((t for t in since if t), default=None) or job.created_at
        submitted = parse_time(job.annotations.get(schema.SUBMITTED_AT, "")) or job.created_at
        item = Waiting(
            position=0,
            job=job,
            priority_value=value,
            pending=job.pending,
            replicas=job.replicas,
            requests=pod_requests(template) if template is not None else {},
            waiting_since=waiting_since,
            reason=reason,
            message=message,
        )
        sort_key = (-value, submitted or datetime.max.replace(tzinfo=UTC), job.namespace, job.name)
        waiting.append((sort_key, item))
    waiting.sort(key=lambda pair: pair[0])
    items = tuple(replace(w, position=i) for i, (_, w) in enumerate(waiting, start=1))
    wanted = list(resources) or accelerators_in(nodes, pods)
    cluster = usage or Usage("")
    return Queue(
        namespace=namespace,
        items=items,
        capacity=tuple(capacity(res, nodes, pods, cluster) for res in wanted),
        usage=cluster,
        now=now or datetime.now(UTC),
    )


def _priority_value(template: Any, pods: Sequence[Any], class_values: Mapping[str, int]) -> int:
    """The pods' priority as admission set it; else their PriorityClass's value."""
    for pod in pods:
        if pod.spec.HasField("priority"):
            return int(pod.spec.priority)
    if template is not None:
        name = template.priorityClassName
        if name in class_values:
            return int(class_values[name])
        from ant.jobs.priorities import LEVELS

        for level in LEVELS:
            if level.name == name:
                return level.value
    return 0


def _scheduler_reason(unscheduled: Sequence[Any], job: Job) -> tuple[str, str]:
    for pod in unscheduled:
        for c in pod.status.conditions:
            if c.type == "PodScheduled" and c.status == "False":
                return c.reason, " ".join(c.message.split())
    missing = job.replicas - len({p.index for p in job.pods if not p.terminating})
    if missing > 0:
        return "NotCreated", f"{missing} pod(s) not created yet (ant show {job.name})"
    return "", ""


def _pod_index(pod: Any) -> int:
    text = pod.metadata.labels.get(schema.POD_INDEX) or pod.metadata.name.rpartition("-")[2]
    return int(text) if text.isdigit() else 0


# ---- preemptions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Preemption:
    """One preempted pod, from its ``Preempted`` event or its ``DisruptionTarget`` condition."""

    namespace: str
    pod: str
    pod_uid: str
    at: datetime
    message: str = ""


def preemption_events(client: Client, namespace: str | None) -> list[Any]:
    """The scheduler's ``Preempted`` pod events in scope; none if events cannot be read."""
    try:
        return list(client.list(r.EVENTS, namespace, field_selector=PREEMPTED_EVENTS).items)
    except Forbidden:
        return []


def preemptions_in(events: Iterable[Any], pods: Iterable[Any] = ()) -> list[Preemption]:
    """Preempted pods, one per pod uid (an event wins over a condition: finer time)."""
    found: dict[str, Preemption] = {}
    for e in events:
        if e.reason != "Preempted" or e.involvedObject.kind != "Pod":
            continue
        at = _event_time(e)
        obj = e.involvedObject
        key = obj.uid or f"{obj.namespace}/{obj.name}@{at}"
        if at is not None and key not in found:
            found[key] = Preemption(obj.namespace, obj.name, obj.uid, at, e.message)
    for pod in pods:
        c = preemption_condition(pod)
        at = _time(c.lastTransitionTime) if c is not None else None
        meta = pod.metadata
        if c is not None and at is not None and meta.uid not in found:
            found[meta.uid] = Preemption(meta.namespace, meta.name, meta.uid, at, c.message)
    return sorted(found.values(), key=lambda p: p.at)


def preemption_condition(pod: Any) -> Any | None:
    """The condition the scheduler sets on a pod it preempts (None: not preempted)."""
    for c in pod.status.conditions:
        if (
            c.type == "DisruptionTarget"
            and c.status == "True"
            and c.reason == "PreemptionByScheduler"
        ):
            return c
    return None


def count_preemptions(
    count: int,
    last_at: datetime | None,
    times: Iterable[datetime],
    created_at: datetime | None = None,
    gap: timedelta = PREEMPTION_GAP,
) -> tuple[int, datetime | None]:
    """Advance a job's tally with preemption times: pure and idempotent.

    Times not after ``last_at`` were counted already; times before the job existed
    belong to an earlier job of the same name. A time more than ``gap`` after the
    previous one starts a new preemption; closer ones belong to the same one.
    """
    for t in sorted(times):
        if created_at is not None and t < created_at:
            continue
        if last_at is not None and t <= last_at:
            continue
        if last_at is None or t - last_at > gap:
            count += 1
        last_at = t
    return count, last_at


def tally_preemptions(
    jobs: Sequence[Job], events: Iterable[Any], pods: Iterable[Any] = ()
) -> list[Job]:
    """Pure: ``jobs`` with their tally advanced by the preemptions the events and pods show."""
    times = _preemption_times(events, pods)
    return [_with_tally(job, times.get((job.namespace, job.name), ())) for job in jobs]


def _preemption_times(
    events: Iterable[Any], pods: Iterable[Any]
) -> dict[tuple[str, str], list[datetime]]:
    by_job: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for p in preemptions_in(events, pods):
        by_job[(p.namespace, job_of_pod(p.pod))].append(p.at)
    return by_job


def _with_tally(job: Job, times: Sequence[datetime]) -> Job:
    if not times:
        return job
    count, last = count_preemptions(job.preemptions, job.last_preempted_at, times, job.created_at)
    if count == job.preemptions and last == job.last_preempted_at:
        return job
    annotations = {**job.annotations, **_tally_annotations(count, last)}
    return replace(job, preemptions=count, annotations=annotations)


def _tally_annotations(count: int, last: datetime | None) -> dict[str, str]:
    stamp = rfc3339(last, fraction=True) if last else ""
    return {schema.PREEMPTIONS: str(count), schema.LAST_PREEMPTED_AT: stamp}


def job_of_pod(pod_name: str) -> str:
    """``bert-12`` -> ``bert``: a StatefulSet pod's job; empty for other names."""
    job, _, ordinal = pod_name.rpartition("-")
    return job if ordinal.isdigit() else ""


def _time(t: Any) -> datetime | None:
    if not t.seconds:
        return None
    return datetime.fromtimestamp(t.seconds, UTC) + timedelta(microseconds=t.nanos // 1000)


def _event_time(e: Any) -> datetime | None:
    for t in (e.eventTime, e.lastTimestamp, e.firstTimestamp, e.metadata.creationTimestamp):
        found = _time(t)
        if found is not None:
            return found
    return None
