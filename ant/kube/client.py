"""A generic Kubernetes client over ``Transport``, speaking protobuf.

Objects come back as the generated protobuf messages themselves, never
converted into dicts or model objects: decoding 1,000 StatefulSets this way
costs milliseconds, and converting would give that back. Resources the server
cannot serve as protobuf (CRDs, most aggregated APIs) answer the same calls in
JSON, decoded to plain dicts.

Request building (``Resource.path``, the query dicts) is pure; I/O is in the
transport.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

from ant.errors import DecodeError, Gone, TransportError, ValidationError, api_error
from ant.kube import codec
from ant.kube.transport import ACCEPT_PROTOBUF, Params, Response, Transport

if TYPE_CHECKING:
    from google.protobuf.message import Message

T = TypeVar("T")

METADATA_LIST_ACCEPT = ", ".join(
    [
        f"{codec.PROTOBUF};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        f"{codec.JSON};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        codec.JSON,
    ]
)
METADATA_ACCEPT = ", ".join(
    [
        f"{codec.PROTOBUF};as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        f"{codec.JSON};as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        codec.JSON,
    ]
)
PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
# How much of a streamed list body is handed over at once (``Client.list_each``).
LIST_CHUNK = 256 * 1024
PatchType = Literal["merge", "strategic", "json", "apply"]
PropagationPolicy = Literal["Background", "Foreground", "Orphan"]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@dataclass(frozen=True)
class Resource(Generic[T]):
    """One API resource: where it lives and what kind it holds.

    ``T`` is what the client returns for it: a generated message for built-in
    kinds, ``dict`` for ``json_only`` resources (CRDs).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    json_only: bool = False

    @property
    def accept(self) -> str:
        """Protobuf when ant has the kind's message; JSON otherwise (or when the server says so)."""
        return codec.JSON if self.json_only else ACCEPT_PROTOBUF

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        prefix = ("apis", self.group, self.version) if self.group else ("api", self.version)
        scope = ("namespaces", namespace) if self.namespaced and namespace else ()
        # An empty name is refused, never taken for the collection (a DELETE would empty it).
        named = () if name is None else (name, subresource) if subresource else (name,)
        return api_path(*prefix, *scope, self.plural, *named)


def api_path(*segments: str) -> str:
    """A request path from its segments, each checked and percent-encoded.

    The one place a request path is built: no name, however strange, can add a
    segment, climb out with ``..`` or start a query. Kubernetes refuses the same
    names for any object (``path.ValidatePathSegmentName``), so only a mistake or an
    attack is stopped here; callers validate what users type with a better message.
    """
    from urllib.parse import quote

    for segment in segments:
        if segment in ("", ".", "..") or "/" in segment or "%" in segment:
            raise ValidationError(
                "name", f"{segment!r} cannot be part of a request path", hint="use a valid name"
            )
    return "".join("/" + quote(segment, safe="") for segment in segments)


@dataclass(frozen=True)
class ObjectList(Generic[T]):
    items: Sequence[T]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent(Generic[T]):
    type: WatchEventType
    object: T = field(repr=False)
    resource_version: str


class Client:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # ---- reads -------------------------------------------------------------
    def get(self, resource: Resource[T], name: str, namespace: str | None = None) -> T:
        resp = self.transport.request("GET", resource.path(namespace, name), accept=resource.accept)
        return self._decode(resource, resp)

    def list(
        self,
        resource: Resource[T],
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> ObjectList[T]:
        """All matching objects, following ``continue`` tokens page by page.

        A continue token that expired mid-way (410) restarts with a fresh list,
        as kubectl does, so the result is always one consistent snapshot.
        """
        return self._paginate(
            resource,
            namespace,
            resource.accept,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )

    def list_each(
        self,
        resource: Resource[T],
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[T]:
        """The items of one list request (no pages), each as soon as it has arrived.

        A protobuf body is decoded item by item while it downloads (``ant.kube.liststream``):
        only one item and one chunk are in memory at a time, so a caller that keeps a
        summary of each item lists 10,000 objects in a fraction of their body's size. A
        JSON answer (CRDs) is decoded whole first.
        """
        params: Params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        with self.transport.stream(
            resource.path(namespace), params=params, accept=resource.accept, chunk_size=LIST_CHUNK
        ) as (content_type, chunks):
            if content_type.startswith(codec.PROTOBUF):
                from ant.kube.liststream import ListReader

                yield from ListReader().items(chunks)
            else:
                body = _json_body(Response(200, content_type, b"".join(chunks)))
                yield from body.get("items") or []

    def list_metadata(
        self,
        resource: Resource[Any],
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> ObjectList[Any]:
        """Only names, labels, annotations and the rest of ``metadata``: PartialObjectMetadata."""
        return self._paginate(
            resource,
            namespace,
            METADATA_LIST_ACCEPT,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
        )

    def _paginate(
        self,
        resource: Resource[Any],
        namespace: str | None,
        accept: str,
        *,
        limit: int | None,
        **query: str | None,
    ) -> ObjectList[Any]:
        path = resource.path(namespace)
        params: dict[str, str | int | None] = {
            "labelSelector": query.get("label_selector"),
            "fieldSelector": query.get("field_selector"),
            "resourceVersion": query.get("resource_version"),
            "resourceVersionMatch": query.get("resource_version_match"),
            "limit": limit,
        }
        # A continue request carries the selectors, limit and token only: the token pins
        # the snapshot, and with resourceVersion(Match) the server answers 422.
        pinned = {**params, "resourceVersion": None, "resourceVersionMatch": None}
        items: list[Any] = []
        first: ObjectList[Any] | None = None
        token = ""
        while True:
            try:
                page = _decode_page(
                    self.transport.request(
                        "GET",
                        path,
                        params={**pinned, "continue": token} if token else params,
                        accept=accept,
                    )
                )
            except Gone:
                if not token:
                    raise
                items, first, token = [], None, ""  # the snapshot expired: start over
                continue
            token = page.continue_token
            if first is None and not token:
                return page  # one page: hand back the decoded sequence as it is
            first = first or page
            items.extend(page.items)
            if not token:
                return ObjectList(items, first.resource_version)

    # ---- writes ------------------------------------------------------------
    def create(
        self,
        resource: Resource[T],
        obj: T,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str = "ant",
    ) -> T:
        body, content_type = self._encode(resource, obj)
        resp = self.transport.request(
            "POST",
            resource.path(namespace),
            params={"dryRun": "All" if dry_run else None, "fieldManager": field_manager},
            body=body,
            content_type=content_type,
            accept=resource.accept,
        )
        return self._decode(resource, resp)

    def patch(
        self,
        resource: Resource[T],
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str = "ant",
        force: bool | None = None,
    ) -> T:
        resp = self.transport.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            params={
                "dryRun": "All" if dry_run else None,
                "fieldManager": field_manager,
                "force": force,
            },
            body=json.dumps(patch).encode(),
            content_type=PATCH_CONTENT_TYPES[patch_type],
            accept=resource.accept,
        )
        return self._decode(resource, resp)

    def delete(
        self,
        resource: Resource[Any],
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy | None = "Background",
        uid: str | None = None,
        resource_version: str | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> None:
        """Delete one object; ``uid``/``resource_version`` make it conditional (409 if changed)."""
        self.transport.request(
            "DELETE",
            resource.path(namespace, name),
            body=_delete_options(
                propagation_policy, uid, resource_version, grace_period_seconds, dry_run
            ),
            content_type=codec.JSON,
            idempotent=True,
        )

    # ---- streams -----------------------------------------------------------
    def watch(
        self,
        resource: Resource[T],
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
        metadata_only: bool = False,
        on_open: Callable[[], None] | None = None,
    ) -> Iterator[WatchEvent[T]]:
        """One watch request: events until the server closes it (after ``timeout_seconds``).

        An ERROR event is raised as its ``ApiError`` (``Gone`` when the
        resourceVersion is too old: relist). ``on_open`` is called once the server has
        accepted the watch (its headers are in), before any event. Use ``ant.kube.watch``
        to keep a watch going across closes and dropped connections.
        """
        params: Params = {
            "watch": True,
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": allow_bookmarks or None,
        }
        if metadata_only:
            accept = METADATA_ACCEPT
        elif resource.json_only:
            accept = codec.JSON
        else:
            accept = f"{codec.PROTOBUF_WATCH}, {codec.PROTOBUF}, {codec.JSON}"
        with self.transport.stream(
            resource.path(namespace),
            params=params,
            accept=accept,
            read_timeout=timeout_seconds + 30,
        ) as (content_type, chunks):
            if on_open is not None:
                on_open()
            if content_type.startswith(codec.PROTOBUF):
                yield from _protobuf_watch_events(resource, chunks)
            else:
                yield from _json_watch_events(chunks)

    def pod_logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> Iterator[bytes]:
        """A pod's log, line by line (newline included), as the kubelet serves it."""
        params: Params = {
            "container": container,
            "follow": follow or None,
            "tailLines": tail_lines,
            "sinceSeconds": since_seconds,
            "timestamps": timestamps or None,
            "previous": previous or None,
        }
        from ant.kube.resources import PODS

        path = PODS.path(namespace, pod, "log")
        # A followed log has no natural end: no read timeout beyond a long idle limit.
        with self.transport.stream(
            path, params=params, accept="*/*", read_timeout=3600 if follow else None
        ) as (_, chunks):
            pending = b""
            for chunk in chunks:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line + b"\n"
            if pending:
                yield pending

    # ---- codec glue --------------------------------------------------------
    def _encode(self, resource: Resource[Any], obj: Any) -> tuple[bytes, str]:
        if isinstance(obj, dict):
            return json.dumps(obj).encode(), codec.JSON
        message = cast("Message", obj)
        return codec.encode(message, resource.api_version, resource.kind), codec.PROTOBUF

    def _decode(self, resource: Resource[T], resp: Response) -> T:
        if resp.is_protobuf:
            return cast(T, codec.decode(resp.content))
        return cast(T, _json_body(resp))


@dataclass(frozen=True)
class _Page(ObjectList[T]):
    continue_token: str = ""


def _decode_page(resp: Response) -> _Page[Any]:
    """One page of a list, protobuf (objects or PartialObjectMetadata) or JSON."""
    if resp.is_protobuf:
        msg: Any = codec.decode(resp.content)
        return _Page(msg.items, msg.metadata.resourceVersion, getattr(msg.metadata, "continue"))
    body = _json_body(resp)
    meta = body.get("metadata") or {}
    return _Page(
        body.get("items") or [], str(meta.get("resourceVersion", "")), meta.get("continue", "")
    )


def _json_body(resp: Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as e:
        raise DecodeError(f"the server sent an undecodable {resp.content_type or 'body'}") from e
    if not isinstance(body, dict):
        raise DecodeError("the server sent JSON that is not an object")
    return body


def _delete_options(
    propagation_policy: str | None,
    uid: str | None,
    resource_version: str | None,
    grace_period_seconds: int | None,
    dry_run: bool,
) -> bytes:
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        options["propagationPolicy"] = propagation_policy
    preconditions = {
        k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v is not None
    }
    if preconditions:
        options["preconditions"] = preconditions
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if dry_run:
        options["dryRun"] = ["All"]
    return json.dumps(options).encode()


def _protobuf_watch_events(
    resource: Resource[T], chunks: Iterator[bytes]
) -> Iterator[WatchEvent[T]]:
    for frame in codec.iter_watch_frames(chunks):
        event_type, envelope = codec.decode_watch_event(frame)
        obj: Any = codec.decode_envelope_object(envelope)
        if event_type == "ERROR":
            raise api_error(codec.status_from_message(obj))
        yield WatchEvent(cast(WatchEventType, event_type), obj, obj.metadata.resourceVersion)


def _json_watch_events(chunks: Iterator[bytes]) -> Iterator[WatchEvent[Any]]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as e:
                raise DecodeError("a watch event is not valid JSON") from e
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                raise api_error(codec.status_from_json(obj))
            rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
            yield WatchEvent(event["type"], obj, rv)
    if pending.strip():
        raise TransportError("the watch stream ended in the middle of an event")


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    **transport_options: Any,
) -> Client:
    """A client for a kubeconfig context (or the in-cluster service account)."""
    from ant.kube import config

    return Client(
        Transport.from_kubeconfig(config.load(kubeconfig, context, env), **transport_options)
    )
