"""Submitting a job: checks first, then its objects created as one unit.

A job's objects are one unit: the StatefulSet is the root, and the Service (and PodGroup)
carry an ownerReference to it, so deleting the StatefulSet (or the garbage collector,
after a delete that was cut short) removes the rest. A submit creates the root first,
marked ``schema.SERVICE_PENDING`` until its Service exists: an interruption leaves at
worst a marked StatefulSet, which ``ant list`` shows as Incomplete, ``ant delete``
removes, and a second submit reports. A failed submit removes what it created.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from ant.errors import (
    AlreadyExists,
    AntError,
    Forbidden,
    GangUnavailable,
    JobExists,
    NotFound,
    NotFoundError,
    UsageError,
    ValidationError,
)
from ant.jobs import data, schema
from ant.jobs import gang as gangs
from ant.jobs.lifecycle import get_statefulset, job_service
from ant.kube import resources as r
from ant.kube.client import Client

if TYPE_CHECKING:
    from ant.jobs.manifest import Manifests


def to_messages(manifests: Manifests) -> tuple[Any, Any]:
    """The Service and StatefulSet as protobuf messages; unknown fields fail here, client-side."""
    from ant.kube.convert import to_message
    from ant.kube.proto import apps_v1_pb2, core_v1_pb2

    service = to_message(manifests.service, core_v1_pb2.Service)
    try:
        statefulset = to_message(manifests.statefulset, apps_v1_pb2.StatefulSet)
    except ValidationError as e:
        # A bad field can only come from the user's podTemplate: say so.
        raise ValidationError(
            f"podTemplate ({e.field.removeprefix('spec.template.')})",
            e.message.split(": ", 1)[-1],
            hint=e.hint,
        ) from e
    return service, statefulset


def podgroup_message(manifests: Manifests) -> Any | None:
    """A PodGroup gang's PodGroup as a protobuf message (None for other jobs)."""
    from ant.kube.convert import to_message
    from ant.kube.proto import scheduling_v1beta1_pb2

    if manifests.podgroup is None:
        return None
    return to_message(manifests.podgroup, scheduling_v1beta1_pb2.PodGroup)


def check_priority_class(client: Client, priority: str) -> None:
    name = schema.priority_class(priority)
    try:
        client.get(r.PRIORITY_CLASSES, name)
    except NotFound as e:
        raise UsageError(
            f"priority class {name} is not installed in this cluster",
            hint="an admin runs 'ant admin install-priorities'",
        ) from e
    except Forbidden:
        pass  # cannot look: the pods' admission will tell if it is missing


def check_dependencies(client: Client, namespace: str, after: str) -> None:
    """Every ``--after`` job exists (a missing one could never succeed)."""
    for name in filter(None, after.split(",")):
        try:
            get_statefulset(client, namespace, name)
        except NotFoundError as e:
            raise NotFoundError(
                f"--after: job {name} not found in namespace {namespace}",
                hint="submit it first; 'ant list' shows your jobs",
            ) from e


def submit(
    client: Client,
    manifests: Manifests,
    priority: str,
    *,
    messages: tuple[Any, Any] | None = None,
    preflight: bool = True,
    on_unchecked: Callable[[str], None] | None = None,
) -> Any:
    """Create the job's StatefulSet (marked ``SERVICE_PENDING``), then what it owns (its
    PodGroup, if a PodGroup gang, and its Service), then clear the mark; returns the
    StatefulSet.

    Everything that can fail is tried first (``check``): the Secrets, PVCs and ConfigMaps
    the pods need are looked up (``on_unchecked`` hears of those ant may not read), then
    every create runs as a server-side dry run. If a later step still fails (or ant is
    interrupted) the StatefulSet is removed again, and with it whatever it owns. A sweep
    (``ant.jobs.sweep``) runs the preflight once for all its jobs, and passes
    ``preflight=False`` and ready-made ``messages``.
    """
    service, statefulset = messages or to_messages(manifests)
    podgroup = podgroup_message(manifests)
    if preflight:
        check(client, manifests, (service, statefulset), priority, on_unchecked)
    ns, name = manifests.namespace, manifests.name
    marked = type(statefulset)()
    marked.CopyFrom(statefulset)
    marked.metadata.annotations[schema.SERVICE_PENDING] = "true"
    try:
        created = client.create(r.STATEFULSETS, marked, ns)
    except AlreadyExists as e:
        raise job_exists(client, ns, name) from e
    try:
        # The PodGroup first: the pods exist already and wait for it.
        if podgroup is not None:
            create_owned_podgroup(client, ns, podgroup, created)
        create_owned_service(client, ns, service, created)
        done = {"metadata": {"annotations": {schema.SERVICE_PENDING: None}}}
        return client.patch(r.STATEFULSETS, name, done, ns)
    except BaseException:
        with suppress(NotFound):
            client.delete(r.STATEFULSETS, name, ns, uid=created.metadata.uid)
        raise


def check_references(
    client: Client, manifests: Manifests, on_unchecked: Callable[[str], None] | None
) -> None:
    """A missing Secret, PVC or ConfigMap fails the submit (the dry run does not check)."""
    pod_spec = manifests.statefulset["spec"]["template"].get("spec", {})
    for what in data.check_references(client, manifests.namespace, pod_spec):
        if on_unchecked:
            on_unchecked(what)


def check(
    client: Client,
    manifests: Manifests,
    messages: tuple[Any, Any],
    priority: str,
    on_unchecked: Callable[[str], None] | None = None,
) -> None:
    """What a submit checks before it creates anything: the PriorityClass, the Secrets,
    PVCs and ConfigMaps, the ``--after`` jobs, the Kueue queue (for a Kueue gang), and a
    dry run of every create."""
    check_priority_class(client, priority)
    check_references(client, manifests, on_unchecked)
    check_dependencies(
        client, manifests.namespace, messages[1].metadata.annotations.get(schema.AFTER, "")
    )
    queue = manifests.statefulset["metadata"]["labels"].get(gangs.QUEUE_LABEL)
    if queue:
        gangs.check_queue(client, manifests.namespace, queue, priority)
    dry_run(client, manifests, messages)


def dry_run(client: Client, manifests: Manifests, messages: tuple[Any, Any]) -> None:
    """Every create as a server-side dry run: the root first, as for real."""
    service, statefulset = messages
    ns = manifests.namespace
    try:
        client.create(r.STATEFULSETS, statefulset, ns, dry_run=True)
    except AlreadyExists as e:
        raise job_exists(client, ns, manifests.name) from e
    try:
        client.create(r.SERVICES, service, ns, dry_run=True)
    except AlreadyExists:
        job_service(client, ns, manifests.name)  # replaced by the real submit
    podgroup = podgroup_message(manifests)
    if podgroup is not None:
        try:
            client.create(r.PODGROUPS, podgroup, ns, dry_run=True)
        except AlreadyExists:
            pass  # a leftover of an earlier job of this name: replaced by the real submit
        except NotFound as e:
            raise _no_podgroups() from e


def _owned(message: Any, owner: Any) -> Any:
    """A copy of ``message`` with an ownerReference to the StatefulSet ``owner``."""
    owned = type(message)()
    owned.CopyFrom(message)
    ref = owned.metadata.ownerReferences.add()
    ref.apiVersion, ref.kind = r.STATEFULSETS.api_version, r.STATEFULSETS.kind
    ref.name, ref.uid = owner.metadata.name, owner.metadata.uid
    return owned


def create_owned_podgroup(client: Client, namespace: str, podgroup: Any, owner: Any) -> Any:
    """The job's PodGroup, owned by its StatefulSet; a leftover of an earlier job of the
    same name (its owner gone, the garbage collector not yet through) is replaced."""
    owned = _owned(podgroup, owner)
    try:
        return client.create(r.PODGROUPS, owned, namespace)
    except NotFound as e:
        raise _no_podgroups() from e
    except AlreadyExists:
        with suppress(NotFound):
            client.delete(r.PODGROUPS, owner.metadata.name, namespace)
    return client.create(r.PODGROUPS, owned, namespace)


def _no_podgroups() -> GangUnavailable:
    return GangUnavailable(
        "this cluster does not serve PodGroups (scheduling.k8s.io/v1beta1) any more",
        hint="submit again (ant now knows), or with --no-gang",
    )


def create_owned_service(client: Client, namespace: str, service: Any, owner: Any) -> Any:
    """The job's Service, owned by its StatefulSet ``owner``.

    A Service of this job left over without its StatefulSet (an older ant created the
    Service first; or the garbage collector has yet to remove it) is replaced.
    """
    owned = _owned(service, owner)
    try:
        return client.create(r.SERVICES, owned, namespace)
    except AlreadyExists:
        leftover = job_service(client, namespace, owner.metadata.name)
    if leftover is not None:
        with suppress(NotFound):
            client.delete(r.SERVICES, owner.metadata.name, namespace, uid=leftover.metadata.uid)
    return client.create(r.SERVICES, owned, namespace)


def job_exists(client: Client, namespace: str, name: str) -> JobExists:
    """The error for a name that is taken, saying when the job there is incomplete."""
    try:
        sts = client.get(r.STATEFULSETS, name, namespace)
    except AntError:
        sts = None  # gone again, or cannot look: the plain report is still true
    if sts is not None and schema.SERVICE_PENDING in sts.metadata.annotations:
        return JobExists(
            f"job {name} already exists in namespace {namespace}, incomplete: its submit "
            "was interrupted",
            hint=f"'ant delete {name}' removes it; then submit again",
        )
    return JobExists(f"job {name} already exists in namespace {namespace}")
