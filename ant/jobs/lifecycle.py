"""Reading, restarting and deleting jobs, and their logs (submitting: ``submission``).

Reads are label queries: one LIST of StatefulSets and one of pods per
namespace scope (the pods only when needed, see ``list_jobs``), joined in memory;
never a call per job, and never a write.

``ant delete`` removes whatever part of a job exists: its StatefulSet (whose Service and
PodGroup the garbage collector then removes, as their owner), or a job's Service left
alone (``job_service``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ant.errors import (
    AntError,
    Gone,
    JobExists,
    NotFound,
    NotFoundError,
    UsageError,
    ValidationError,
)
from ant.jobs import schema
from ant.jobs.documents import rfc3339
from ant.jobs.model import (
    Job,
    Replica,
    job_from,
    job_of,
    replicas_by_job,
    running_job,
    summary,
)
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.watch import follow

if TYPE_CHECKING:  # what only submit and the waits need: not on the path of a list
    from ant.jobs.podwatch import Pods


@dataclass(frozen=True)
class Event:
    time: str
    type: str
    reason: str
    object: str
    message: str
    count: int = 1


# ---- read ---------------------------------------------------------------------
def list_jobs(
    client: Client,
    namespace: str | None,
    *,
    user_label: str | None = None,
    selector: str | None = None,
    track_preemptions: bool = False,
    summary_only: bool = False,
) -> list[Job]:
    """Jobs in a namespace (``None``: all), optionally one user's, by label query.

    ``track_preemptions``: also list the scope's Preempted events and advance each job's
    preemption count with them, in memory (``ant.jobs.queue.tally_preemptions``).
    ``summary_only``: the caller shows no replicas or nodes, so the pods are listed only
    when some StatefulSet's status cannot tell its summary (``model.settled``): one
    request when every job is fully running, else a second one after the first.
    """
    if track_preemptions:  # not on the path of a plain list
        from ant.jobs import queue as jobqueue

    label_selector = schema.mine_selector(user_label, selector)
    # Both lists are decoded item by item while they arrive, each item summarized and let
    # go at once: memory holds the jobs, never the bodies (10,000 jobs: see
    # docs/benchmarks.md). Pods are kept only where the preemption count needs them.
    preempted: list[Any] = []

    def pod_replicas() -> dict[tuple[str, str], list[Replica]]:
        pods = client.list_each(r.PODS, namespace, label_selector=label_selector)
        if not track_preemptions:
            return replicas_by_job(pods)
        return replicas_by_job(pods, jobqueue.preemption_condition, preempted)

    with ThreadPoolExecutor(max_workers=3) as pool:
        statefulsets = pool.submit(
            lambda: [
                summary(s)
                for s in client.list_each(r.STATEFULSETS, namespace, label_selector=label_selector)
            ]
        )
        by_job = None if summary_only else pool.submit(pod_replicas)
        events = (
            pool.submit(jobqueue.preemption_events, client, namespace)
            if track_preemptions
            else None
        )
        heads = statefulsets.result()
        if by_job is None and all(h.settled for h in heads):
            jobs = [running_job(h) for h in heads]
        else:
            replicas = (by_job or pool.submit(pod_replicas)).result()
            jobs = [job_of(h, replicas.get(h.key, ())) for h in heads]
        if events is None:
            return jobs
        return jobqueue.tally_preemptions(jobs, events.result(), preempted)


def _being_deleted(obj: Any) -> bool:
    """Whether a PartialObjectMetadata (protobuf or JSON) has a deletionTimestamp."""
    if isinstance(obj, dict):
        return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    return bool(obj.metadata.HasField("deletionTimestamp"))


def _field(obj: Any, name: str) -> str:
    """A metadata field of a PartialObjectMetadata, protobuf or JSON."""
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get(name, ""))
    return str(getattr(obj.metadata, name))


def job_names(client: Client, namespace: str, label_selector: str) -> set[str]:
    """Names of the jobs matching a selector of which any object exists (a Service
    without its StatefulSet too): what a delete by selector must remove."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = [
            pool.submit(client.list_metadata, res, namespace, label_selector=label_selector)
            for res in (r.STATEFULSETS, r.SERVICES)
        ]
        items = [item for f in found for item in f.result().items]
    return {_field(item, "name") for item in items}


def live_job_names(client: Client, namespace: str, label_selector: str) -> set[str]:
    """Names of the jobs matching a selector whose StatefulSet exists and is not being
    deleted: what was created and stays. (A Service alone is no job: its StatefulSet
    went, and the garbage collector takes it.)"""
    items = client.list_metadata(r.STATEFULSETS, namespace, label_selector=label_selector).items
    return {_field(item, "name") for item in items if not _being_deleted(item)}


def get_statefulset(client: Client, namespace: str, name: str, *, any_owner: bool = False) -> Any:
    """A job's StatefulSet; refuses StatefulSets ant did not create unless asked to."""
    try:
        sts = client.get(r.STATEFULSETS, name, namespace)
    except NotFound as e:
        raise NotFoundError(
            f"job {name} not found in namespace {namespace}",
            hint="'ant list' shows your jobs; -n picks the namespace",
        ) from e
    managed = sts.metadata.labels.get(schema.MANAGED_BY) == schema.MANAGED_BY_VALUE
    if not managed and not any_owner:
        raise UsageError(f"statefulset {name} was not created by ant; ant leaves it alone")
    return sts


def get_job(client: Client, namespace: str, name: str, *, template: bool = False) -> Job:
    """One job with its pods; ``template``: and what its pods run (``model.job_from``)."""
    sts = get_statefulset(client, namespace, name)
    pods = client.list(r.PODS, namespace, label_selector=f"{schema.JOB}={name}")
    return job_from(sts, pods.items, template=template)


def with_events(client: Client, job: Job, limit: int = 20) -> tuple[Job, list[Event]]:
    """The job with its preemption count advanced by its pods' ``Preempted`` events (in
    memory), and the recent events of the StatefulSet and its pods, oldest first."""
    from ant.jobs.queue import tally_preemptions

    pod_names = {p.pod for p in job.pods} | {f"{job.name}-{i}" for i in range(job.replicas)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        own = pool.submit(
            client.list,
            r.EVENTS,
            job.namespace,
            field_selector=f"involvedObject.kind=StatefulSet,involvedObject.name={job.name}",
        )
        of_pods = pool.submit(
            client.list, r.EVENTS, job.namespace, field_selector="involvedObject.kind=Pod"
        )
        pod_events = of_pods.result().items
        items = [*own.result().items] + [
            e for e in pod_events if e.involvedObject.name in pod_names
        ]
    events = [_event(e) for e in items]
    events.sort(key=lambda e: e.time)
    return tally_preemptions([job], pod_events)[0], events[-limit:]


def _event(e: Any) -> Event:
    when = e.lastTimestamp.seconds or e.eventTime.seconds or e.metadata.creationTimestamp.seconds
    return Event(
        time=rfc3339(datetime.fromtimestamp(when, UTC)) if when else "",
        type=e.type,
        reason=e.reason,
        object=f"{e.involvedObject.kind.lower()}/{e.involvedObject.name}",
        message=" ".join(e.message.split()),
        count=e.count or 1,
    )


@contextmanager
def watch_changes(
    client: Client, namespaces: Sequence[str | None], label_selector: str
) -> Iterator[threading.Event]:
    """An Event set whenever a matching StatefulSet or pod changes in any of ``namespaces``
    (None: all of them at once; for ``list --watch``)."""
    changed = threading.Event()
    stop = threading.Event()

    def watch(resource: Any, namespace: str | None) -> None:
        while not stop.is_set():
            try:
                for _ in follow(
                    client, resource, "", namespace, label_selector=label_selector, stop=stop
                ):
                    changed.set()
            except (Gone, AntError):
                stop.wait(1.0)  # start again from now; the caller re-lists anyway

    for namespace in namespaces:
        for resource in (r.STATEFULSETS, r.PODS):
            threading.Thread(target=watch, args=(resource, namespace), daemon=True).start()
    try:
        yield changed
    finally:
        stop.set()


# ---- delete -------------------------------------------------------------------
def job_service(client: Client, namespace: str, name: str) -> Any:
    """The Service of job ``name`` if it exists (None if not); refuses anyone else's."""
    try:
        service = client.get(r.SERVICES, name, namespace)
    except NotFound:
        return None
    if not is_job_service(service, name):
        raise JobExists(
            f"a Service named {name} that ant did not create exists in namespace {namespace}",
            hint="choose another job name",
        )
    return service


def is_job_service(service: Any, name: str) -> bool:
    labels = dict(service.metadata.labels)
    managed = labels.get(schema.MANAGED_BY) == schema.MANAGED_BY_VALUE
    return managed and labels.get(schema.JOB) == name


def delete_job(client: Client, namespace: str, name: str) -> None:
    """Delete whatever part of the job exists: the StatefulSet (its pods, and the Service
    it owns, follow) and the Service (which an older ant did not make owned), or a
    Service left without its StatefulSet."""
    try:
        sts = get_statefulset(client, namespace, name)
    except NotFoundError:
        sts = None
    if sts is not None:
        with suppress(NotFound):
            client.delete(r.STATEFULSETS, name, namespace, uid=sts.metadata.uid)
        with suppress(NotFound):
            client.delete(r.SERVICES, name, namespace)  # the job's, by its name
        return
    try:
        service = job_service(client, namespace, name)
    except JobExists:
        service = None  # someone else's Service of that name: not the job's
    if service is None:
        raise NotFoundError(
            f"job {name} not found in namespace {namespace}",
            hint="'ant list' shows your jobs; -n picks the namespace",
        )
    with suppress(NotFound):
        client.delete(r.SERVICES, name, namespace, uid=service.metadata.uid)


def delete_jobs(
    client: Client,
    namespace: str,
    names: Sequence[str],
    on_deleted: Callable[[str], None] | None = None,
    concurrency: int = 16,
) -> None:
    """Delete many jobs concurrently over the one client (a 500-job sweep takes seconds).

    Every job is attempted; the first error is raised after the others finished.
    """
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(delete_job, client, namespace, name): name for name in names}
        errors = []
        for future, name in futures.items():
            try:
                future.result()
            except AntError as e:
                errors.append(e)
                continue
            if on_deleted:
                on_deleted(name)
    if errors:
        raise errors[0]


def wait_gone(client: Client, namespace: str, names: Sequence[str], timeout: float) -> None:
    """Until no pod of these jobs is left."""
    from ant.jobs.podwatch import PodTracker

    wanted = set(names)
    tracker = PodTracker(client, namespace, schema.mine_selector())

    def done(pods: Pods) -> bool:
        return not any(p.metadata.labels.get(schema.JOB) in wanted for p in pods.values())

    tracker.wait_until(done, timeout, what=f"the pods of {', '.join(names)} to go")


# ---- restart ------------------------------------------------------------------
def restart(client: Client, job: Job, indexes: Sequence[int] | None) -> dict[str, str]:
    """Delete the given replicas' pods (all when ``indexes`` is None).

    Returns each deleted pod's name and old uid, to recognise its replacement.
    """
    chosen = range(job.replicas) if indexes is None else indexes
    for i in chosen:
        if not 0 <= i < job.replicas:
            raise ValidationError(
                "--replica", f"{i} is out of range: {job.name} has 0-{job.replicas - 1}"
            )
    existing = {p.index: p for p in job.pods}
    deleted: dict[str, str] = {}
    for i in chosen:
        replica = existing.get(i)
        if replica is None:
            continue
        try:
            client.delete(r.PODS, replica.pod, job.namespace, uid=replica.uid)
        except NotFound:
            continue
        deleted[replica.pod] = replica.uid
    return deleted


def wait_replaced_and_ready(
    client: Client,
    job: Job,
    old_uids: dict[str, str],
    timeout: float,
    on_change: Callable[[int], None] | None = None,
    *,
    stop_when_unschedulable: bool = False,
) -> Pods:
    """Until each named pod exists again with a new uid and is Ready; the job's pods then.
    ``stop_when_unschedulable``: or until one of them is found unschedulable (it lost its
    slot, ``ant restart --wait``)."""
    from ant.jobs.podwatch import PodTracker, is_ready

    tracker = PodTracker(client, job.namespace, f"{schema.JOB}={job.name}")

    def replaced(pods: Pods) -> list[Any]:
        return [
            pods[name]
            for name, uid in old_uids.items()
            if name in pods and pods[name].metadata.uid != uid
        ]

    def count(pods: Pods) -> int:
        return sum(1 for pod in replaced(pods) if is_ready(pod))

    def done(pods: Pods) -> bool:
        if stop_when_unschedulable and any(unschedulable(pod) for pod in replaced(pods)):
            return True
        return count(pods) == len(old_uids)

    return tracker.wait_until(
        done,
        timeout,
        on_change=(lambda pods: on_change(count(pods))) if on_change else None,
        what="restarted pods to be Ready",
    )


def unschedulable(pod: Any) -> str:
    """The scheduler's message when it found no room for ``pod``; empty otherwise."""
    for c in pod.status.conditions:
        if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
            return " ".join(c.message.split()) or "Unschedulable"
    return ""


# ---- logs ---------------------------------------------------------------------
@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    timestamps: bool = False
    previous: bool = False  # the last terminated container's log (a restart's cause)


def pod_logs(client: Client, namespace: str, pod: str, options: LogOptions) -> Iterator[bytes]:
    return client.pod_logs(
        namespace,
        pod,
        follow=options.follow,
        tail_lines=options.tail_lines,
        since_seconds=options.since_seconds,
        timestamps=options.timestamps,
        previous=options.previous,
    )


def all_logs(
    client: Client,
    namespace: str,
    pods: Sequence[tuple[int, str]],
    options: LogOptions,
    max_streams: int = 16,
) -> Iterator[tuple[int, bytes | AntError]]:
    """Lines of many pods' logs as they arrive, tagged with the replica index.

    A replica whose log cannot be read (not started yet, say) yields its error
    and the others go on. At most ``max_streams`` pods are streamed at once;
    the rest wait their turn (with --follow, for a stream to end).
    """
    lines: queue.Queue[tuple[int, bytes | AntError] | None] = queue.Queue(maxsize=10_000)
    slots = threading.Semaphore(max_streams)
    stop = threading.Event()

    def stream(index: int, pod: str) -> None:
        with slots:
            try:
                for line in pod_logs(client, namespace, pod, options):
                    if stop.is_set():
                        return
                    lines.put((index, line))
            except AntError as e:
                lines.put((index, e))
            finally:
                lines.put(None)

    threads = [
        threading.Thread(target=stream, args=(i, p), daemon=True, name=f"logs-{p}") for i, p in pods
    ]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            item = lines.get()
            if item is None:
                finished += 1
            else:
                yield item
    finally:
        stop.set()
