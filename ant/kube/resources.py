"""The API resources ant uses, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ant.kube import codec
from ant.kube.client import Resource

if TYPE_CHECKING:
    from ant.kube.proto import (
        apps_v1_pb2,
        authentication_v1_pb2,
        authorization_v1_pb2,
        coordination_v1_pb2,
        core_v1_pb2,
        events_v1_pb2,
        scheduling_v1_pb2,
        scheduling_v1beta1_pb2,
    )

T = TypeVar("T")

# Core and apps.
PODS: Resource[core_v1_pb2.Pod] = Resource("", "v1", "pods", "Pod")
SERVICES: Resource[core_v1_pb2.Service] = Resource("", "v1", "services", "Service")
EVENTS: Resource[core_v1_pb2.Event] = Resource("", "v1", "events", "Event")
NODES: Resource[core_v1_pb2.Node] = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACES: Resource[core_v1_pb2.Namespace] = Resource(
    "", "v1", "namespaces", "Namespace", namespaced=False
)
CONFIG_MAPS: Resource[core_v1_pb2.ConfigMap] = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS: Resource[core_v1_pb2.Secret] = Resource("", "v1", "secrets", "Secret")
PERSISTENT_VOLUME_CLAIMS: Resource[core_v1_pb2.PersistentVolumeClaim] = Resource(
    "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"
)
STATEFULSETS: Resource[apps_v1_pb2.StatefulSet] = Resource(
    "apps", "v1", "statefulsets", "StatefulSet"
)
CONTROLLER_REVISIONS: Resource[apps_v1_pb2.ControllerRevision] = Resource(
    "apps", "v1", "controllerrevisions", "ControllerRevision"
)
EVENTS_V1: Resource[events_v1_pb2.Event] = Resource("events.k8s.io", "v1", "events", "Event")
LEASES: Resource[coordination_v1_pb2.Lease] = Resource(
    "coordination.k8s.io", "v1", "leases", "Lease"
)
PRIORITY_CLASSES: Resource[scheduling_v1_pb2.PriorityClass] = Resource(
    "scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False
)
# Native gang scheduling (KEP-4671), beta in Kubernetes v1.37.
PODGROUPS: Resource[scheduling_v1beta1_pb2.PodGroup] = Resource(
    "scheduling.k8s.io", "v1beta1", "podgroups", "PodGroup"
)

# Kueue (CRDs: JSON only, decoded to dicts).
KUEUE = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"
WORKLOADS: Resource[dict[str, Any]] = Resource(
    KUEUE, KUEUE_VERSION, "workloads", "Workload", json_only=True
)
LOCAL_QUEUES: Resource[dict[str, Any]] = Resource(
    KUEUE, KUEUE_VERSION, "localqueues", "LocalQueue", json_only=True
)
CLUSTER_QUEUES: Resource[dict[str, Any]] = Resource(
    KUEUE, KUEUE_VERSION, "clusterqueues", "ClusterQueue", namespaced=False, json_only=True
)
RESOURCE_FLAVORS: Resource[dict[str, Any]] = Resource(
    KUEUE, KUEUE_VERSION, "resourceflavors", "ResourceFlavor", namespaced=False, json_only=True
)
WORKLOAD_PRIORITY_CLASSES: Resource[dict[str, Any]] = Resource(
    KUEUE,
    KUEUE_VERSION,
    "workloadpriorityclasses",
    "WorkloadPriorityClass",
    namespaced=False,
    json_only=True,
)
# Kueue's visibility API (aggregated): a LocalQueue's pending workloads, in queue order,
# are its subresource "pendingworkloads".
VISIBLE_LOCAL_QUEUES: Resource[dict[str, Any]] = Resource(
    "visibility.kueue.x-k8s.io", KUEUE_VERSION, "localqueues", "LocalQueue", json_only=True
)

# Reviews: create-only, answered in the response's status.
SELF_SUBJECT_REVIEWS: Resource[authentication_v1_pb2.SelfSubjectReview] = Resource(
    "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False
)
TOKEN_REVIEWS: Resource[authentication_v1_pb2.TokenReview] = Resource(
    "authentication.k8s.io", "v1", "tokenreviews", "TokenReview", namespaced=False
)
SUBJECT_ACCESS_REVIEWS: Resource[authorization_v1_pb2.SubjectAccessReview] = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False
)


def new(resource: Resource[T]) -> T:
    """An empty message of the resource's kind, to fill in and create."""
    cls: Any = codec.message_class(resource.api_version, resource.kind)
    return cls()  # type: ignore[no-any-return]
