"""What the cache holds: stripped objects, serialized once, indexed for ant's queries.

Each cached resource has a ``Table``. An ``Entry`` is immutable: the object's protobuf
bytes (stripped of what no reader needs, serialized once when it arrives, so a list
response is a concatenation), its name, namespace, labels and the few fields field
selectors may ask about. Messages are decoded again only when a reader needs one (job
rows, JSON); upb does that in microseconds, and it keeps the store at about the size of
the objects on the wire.

Indexes: by namespace (every table) and by the values of ant's own labels
(``ant.dev/job``, ``ant.dev/created-by``), so one user's jobs are found without scanning
everything. A generation counter per table and per namespace changes with every write,
so a response computed from the table can be reused until its generation moves.

Each table also records the last resourceVersion its informer has seen (events and
bookmarks); ``wait_for`` blocks a reader until a table has caught up with a
resourceVersion (read-your-writes). resourceVersions are compared as integers: they are
opaque in general, but every object here comes from one etcd, whose revisions are one
increasing integer.

And how current it is (``ant.cache.freshness``): the server refuses reads of a table
staler than its promise.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ant.cache.freshness import Freshness
from ant.cache.selectors import FieldSelector, LabelSelector
from ant.jobs import schema
from ant.kube import codec
from ant.kube import resources as r
from ant.kube.client import Resource

if TYPE_CHECKING:
    from google.protobuf.message import Message

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
INDEXED_LABELS = (schema.JOB, schema.CREATED_BY)
_BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

FieldsOf = Callable[[Any], dict[str, str]]


def _pod_fields(pod: Any) -> dict[str, str]:
    return {"spec.nodeName": pod.spec.nodeName, "status.phase": pod.status.phase}


_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.name",
    "involvedObject.namespace",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.fieldPath",
    "involvedObject.resourceVersion",
    "reason",
    "reportingComponent",
    "source",
    "type",
)


def _event_fields(event: Any) -> dict[str, str]:
    obj = event.involvedObject
    values = (
        obj.kind,
        obj.name,
        obj.namespace,
        obj.uid,
        obj.apiVersion,
        obj.fieldPath,
        obj.resourceVersion,
        event.reason,
        event.reportingComponent,
        event.source.component,
        event.type,
    )
    return {k: sys.intern(v) for k, v in zip(_EVENT_FIELDS, values, strict=True) if v}


def _node_fields(node: Any) -> dict[str, str]:
    return {"spec.unschedulable": "true" if node.spec.unschedulable else "false"}


@dataclass(frozen=True)
class Kind:
    """A cached resource: where it lives, what its list is called, its selectable fields."""

    name: str  # the plural, as in URLs and RBAC
    resource: Resource[Any]
    fields_of: FieldsOf | None = None
    extra_fields: frozenset[str] = frozenset()

    @property
    def list_kind(self) -> str:
        return self.resource.kind + "List"

    @property
    def supported_fields(self) -> frozenset[str]:
        return _BASE_FIELDS | self.extra_fields

    @property
    def namespaced(self) -> bool:
        return self.resource.namespaced

    def message_class(self) -> type[Message]:
        return codec.message_class(self.resource.api_version, self.resource.kind)


KINDS: Mapping[str, Kind] = {
    k.name: k
    for k in (
        Kind("statefulsets", r.STATEFULSETS),
        Kind("pods", r.PODS, _pod_fields, frozenset({"spec.nodeName", "status.phase"})),
        Kind("services", r.SERVICES),
        Kind("nodes", r.NODES, _node_fields, frozenset({"spec.unschedulable"})),
        Kind("events", r.EVENTS, _event_fields, frozenset(_EVENT_FIELDS)),
    )
}


# --- stripping -----------------------------------------------------------------------


@dataclass(frozen=True)
class Strip:
    """What is removed from every object before it is stored.

    ``managedFields`` always (server-side apply bookkeeping, often half an object) and
    the annotations in ``annotations`` (by default kubectl's last-applied-configuration,
    a second copy of the object). ``fields`` are dotted message paths per resource
    (``pods`` -> ``("spec.containers.env",)``; ``*`` for every resource): a deliberate
    trade of completeness for size, stated in ``ant cache serve --strip-field``.
    """

    annotations: frozenset[str] = frozenset({LAST_APPLIED})
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def apply(self, kind: Kind, msg: Any) -> None:
        meta = msg.metadata
        meta.ClearField("managedFields")
        for key in self.annotations:
            if key in meta.annotations:
                del meta.annotations[key]
        for path in (*self.fields.get("*", ()), *self.fields.get(kind.name, ())):
            _clear_path(msg, path.split("."))


def _clear_path(msg: Any, parts: Sequence[str]) -> None:
    head, rest = parts[0], parts[1:]
    if head not in msg.DESCRIPTOR.fields_by_name:
        return  # not a field of this message: nothing to strip
    if not rest:
        msg.ClearField(head)
        return
    value = getattr(msg, head)
    fd = msg.DESCRIPTOR.fields_by_name[head]
    if fd.message_type is None:
        return
    if _is_repeated(fd):
        for item in value.values() if fd.message_type.GetOptions().map_entry else value:
            if hasattr(item, "DESCRIPTOR"):
                _clear_path(item, rest)
    elif msg.HasField(head):
        _clear_path(value, rest)


def _is_repeated(fd: Any) -> bool:
    # protobuf 5.27+ deprecates `label` in favour of `is_repeated`.
    is_repeated = getattr(fd, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(fd.label == fd.LABEL_REPEATED)


# --- entries and tables --------------------------------------------------------------


class Entry:
    """One stored object: its stripped protobuf bytes and what queries look at."""

    __slots__ = ("_json", "fields", "labels", "name", "namespace", "raw", "rv")

    def __init__(
        self,
        name: str,
        namespace: str,
        rv: str,
        labels: dict[str, str],
        fields: dict[str, str] | None,
        raw: bytes,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.rv = rv
        self.labels = labels
        self.fields = fields
        self.raw = raw
        self._json: bytes | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def selectable(self) -> dict[str, str]:
        return {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            **(self.fields or {}),
        }

    def json(self, kind: Kind) -> bytes:
        """The object in Kubernetes JSON (no apiVersion/kind, as in a list), made once."""
        if self._json is None:
            import json

            from ant.kube.convert import to_dict

            self._json = json.dumps(to_dict(decode(kind, self.raw)), separators=(",", ":")).encode()
        return self._json


def decode(kind: Kind, raw: bytes) -> Any:
    return kind.message_class().FromString(raw)


def make_entry(kind: Kind, msg: Any, strip: Strip) -> Entry:
    """Strip ``msg`` (in place) and freeze it into an Entry."""
    strip.apply(kind, msg)
    meta = msg.metadata
    intern = sys.intern
    return Entry(
        name=meta.name,
        namespace=intern(meta.namespace),
        rv=meta.resourceVersion,
        labels={intern(k): intern(v) for k, v in meta.labels.items()},
        fields=kind.fields_of(msg) if kind.fields_of else None,
        # Deterministic: map entries sorted by key, as Go writes them, so that labels and
        # annotations read back in the same order as from the API server.
        raw=msg.SerializeToString(deterministic=True),
    )


def rv_int(rv: str) -> int:
    """A resourceVersion as the integer etcd made it; -1 when it is not one."""
    try:
        return int(rv)
    except ValueError:
        return -1


class Table:
    """One resource's objects, indexes, generations and resourceVersion progress.

    A table is filled by one informer per scope: ``""`` (cluster-wide) or one namespace
    each. Its resourceVersion is the lowest its scopes have reached: every change up to
    it is applied, in every scope.
    """

    def __init__(
        self,
        kind: Kind,
        progress: threading.Condition,
        scopes: Sequence[str] = ("",),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.freshness = Freshness(scopes, clock)  # the informers report their watches
        self.lock = threading.Lock()
        self._progress = progress
        self.by_namespace: dict[str, dict[str, Entry]] = {}
        self.by_label: dict[str, dict[str, set[tuple[str, str]]]] = {k: {} for k in INDEXED_LABELS}
        self.count = 0
        self.generation = 0
        self.ns_generation: dict[str, int] = {}
        self.scope_rv: dict[str, int] = dict.fromkeys(scopes, -1)
        self.rv = -1  # the lowest scope's resourceVersion
        self.unsynced = set(scopes)
        self.last_event = 0.0  # time.time() of the last change or bookmark

    @property
    def synced(self) -> bool:
        return not self.unsynced

    @property
    def resource_version(self) -> str:
        return str(self.rv) if self.rv >= 0 else ""

    def rv_for(self, namespace: str | None) -> int:
        """The resourceVersion reached for reads of ``namespace`` (None: everything)."""
        if namespace is None or len(self.scope_rv) == 1:
            return self.rv
        return self.scope_rv.get(namespace, self.rv)

    # ---- writes (the informers) ---------------------------------------------------
    def upsert(self, entry: Entry, scope: str = "") -> None:
        with self.lock:
            self._put(entry)
            self._advance(entry.rv, scope)

    def delete(self, entry: Entry, scope: str = "") -> None:
        with self.lock:
            self._remove(entry.namespace, entry.name)
            self._advance(entry.rv, scope)

    def offer(self, entry: Entry) -> bool:
        """A newer copy from a write's own response (the controller reads its writes): kept
        only over an older stored one; the table's resourceVersion does not move."""
        with self.lock:
            old = self.by_namespace.get(entry.namespace, {}).get(entry.name)
            if old is None or rv_int(old.rv) >= rv_int(entry.rv):
                return False
            self._put(entry)
            return True

    def bookmark(self, rv: str, scope: str = "") -> None:
        with self.lock:
            self._advance(rv, scope)

    def replace(self, entries: Iterable[Entry], rv: str, scope: str = "") -> tuple[int, int]:
        """Make the scope hold exactly ``entries`` (a fresh list at ``rv``).

        Returns (added or changed, removed): what the watch had missed, and phantoms
        that were gone from the server but still here.
        """
        fresh = {e.key: e for e in entries}
        changed = removed = 0
        with self.lock:
            namespaces = [scope] if scope else list(self.by_namespace)
            for ns in namespaces:
                for name in list(self.by_namespace.get(ns, ())):
                    if (ns, name) not in fresh:
                        self._remove(ns, name)
                        removed += 1
            for key, entry in fresh.items():
                old = self.by_namespace.get(key[0], {}).get(key[1])
                if old is None or old.rv != entry.rv:
                    self._put(entry)
                    changed += 1
            self._advance(rv, scope, force=True)
            self.unsynced.discard(scope)
        return changed, removed

    def _put(self, entry: Entry) -> None:
        names = self.by_namespace.setdefault(entry.namespace, {})
        old = names.get(entry.name)
        if old is not None:
            self._unindex(old)
        else:
            self.count += 1
        names[entry.name] = entry
        for key in INDEXED_LABELS:
            value = entry.labels.get(key)
            if value is not None:
                self.by_label[key].setdefault(value, set()).add(entry.key)
        self._bump(entry.namespace)

    def _remove(self, namespace: str, name: str) -> None:
        names = self.by_namespace.get(namespace)
        old = names.pop(name, None) if names is not None else None
        if old is None:
            return
        self.count -= 1
        self._unindex(old)
        if not names:
            del self.by_namespace[namespace]
        self._bump(namespace)

    def _unindex(self, entry: Entry) -> None:
        for key in INDEXED_LABELS:
            value = entry.labels.get(key)
            if value is not None:
                keys = self.by_label[key].get(value)
                if keys is not None:
                    keys.discard(entry.key)
                    if not keys:
                        del self.by_label[key][value]

    def _bump(self, namespace: str) -> None:
        self.generation += 1
        self.ns_generation[namespace] = self.generation

    def _advance(self, rv: str, scope: str, *, force: bool = False) -> None:
        self.last_event = time.time()
        self.freshness.heard(scope)
        value = rv_int(rv)
        if force or value > self.scope_rv[scope]:
            self.scope_rv[scope] = value
            self.rv = min(self.scope_rv.values())
            with self._progress:
                self._progress.notify_all()

    # ---- reads ------------------------------------------------------------------
    def version(self, namespace: str | None) -> int:
        """Changes whenever anything a read of ``namespace`` (None: all) sees changes."""
        if namespace is None:
            return self.generation
        return self.ns_generation.get(namespace, 0)

    def get(self, namespace: str, name: str) -> Entry | None:
        return self.by_namespace.get(namespace, {}).get(name)

    def select(
        self,
        namespace: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> tuple[list[Entry], str]:
        """Matching entries sorted by (namespace, name), and the table's resourceVersion."""
        with self.lock:
            candidates = self._candidates(namespace, labels, fields)
            reached = self.rv_for(namespace)
            rv = str(reached) if reached >= 0 else ""
        if labels is not None and not labels.empty:
            candidates = [e for e in candidates if labels.matches(e.labels)]
        if fields is not None and not fields.empty:
            candidates = [e for e in candidates if fields.matches(e.selectable())]
        candidates.sort(key=_sort_key)
        return candidates, rv

    def _candidates(
        self, namespace: str | None, labels: LabelSelector | None, fields: FieldSelector | None
    ) -> list[Entry]:
        if namespace is None and fields is not None:
            namespace = fields.pinned("metadata.namespace")
        if labels is not None:
            for key in INDEXED_LABELS:
                value = labels.pinned(key)
                if value is not None:
                    keys = self.by_label[key].get(value, ())
                    return [
                        self.by_namespace[ns][name]
                        for ns, name in keys
                        if namespace is None or ns == namespace
                    ]
        if namespace is not None:
            names = self.by_namespace.get(namespace, {})
            if fields is not None:
                name = fields.pinned("metadata.name")
                if name is not None:
                    entry = names.get(name)
                    return [entry] if entry is not None else []
            return list(names.values())
        return [e for names in self.by_namespace.values() for e in names.values()]

    def raw_bytes(self) -> int:
        with self.lock:
            return sum(len(e.raw) for names in self.by_namespace.values() for e in names.values())


def _sort_key(entry: Entry) -> tuple[str, str]:
    return (entry.namespace, entry.name)


class Store:
    """Every cached table, and the condition readers wait on for resourceVersions."""

    def __init__(
        self,
        kinds: Iterable[Kind] = KINDS.values(),
        strip: Strip | None = None,
        namespaces: Sequence[str] = (),
        ignored: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``namespaces``: watched one by one (none: cluster-wide, but for ``ignored``)."""
        self.progress = threading.Condition()
        self.strip = strip or Strip()
        self.namespaces = tuple(namespaces)
        self.ignored = frozenset(() if namespaces else ignored)
        self.tables = {k.name: Table(k, self.progress, self.scopes(k), clock) for k in kinds}

    def scopes(self, kind: Kind) -> tuple[str, ...]:
        return self.namespaces if kind.namespaced and self.namespaces else ("",)

    def table(self, name: str) -> Table:
        return self.tables[name]

    @property
    def synced(self) -> bool:
        return all(t.synced for t in self.tables.values())

    def unsynced(self) -> list[str]:
        return [name for name, t in self.tables.items() if not t.synced]

    def stale(self, names: Iterable[str], limit: float) -> dict[str, float]:
        """The named tables whose staleness exceeds ``limit`` seconds, with it."""
        ages = {name: self.tables[name].freshness.staleness() for name in names}
        return {name: age for name, age in ages.items() if age > limit}

    def holds(self, namespace: str | None) -> bool:
        """Whether reads of ``namespace`` (None: cluster-wide) are within what is watched."""
        if self.namespaces:
            return namespace is not None and namespace in self.namespaces
        return namespace not in self.ignored

    def wait_for(
        self, names: Sequence[str], rv: int, timeout: float, namespace: str | None = None
    ) -> bool:
        """Until every named table has seen resourceVersion ``rv`` for reads of
        ``namespace`` (None: everywhere); False on timeout."""
        tables = [self.tables[n] for n in names]
        deadline = time.monotonic() + timeout
        with self.progress:
            while not all(t.rv_for(namespace) >= rv for t in tables):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.progress.wait(left)
        return True
