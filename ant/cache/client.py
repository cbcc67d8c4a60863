"""Reading through an ant cache: where it is, how to reach it, and falling back.

Configuration, first found wins:

1. ``ant --cache URL`` or ``ANT_CACHE_URL`` (``none`` turns a configured cache off);
2. the kubeconfig context's extension ``ant.dev/cache``::

       contexts:
       - name: alice
         context:
           cluster: prod
           user: alice
           extensions:
           - name: ant.dev/cache
             extension:
               url: https://ant-cache.ant-system.svc:8443
               certificate-authority: /etc/ant/cache-ca.crt   # optional

The cache's certificate is checked against ``ANT_CACHE_CA`` (a file), else the
extension's ``certificate-authority`` / ``certificate-authority-data``, else the
cluster's own CA from kubeconfig (a serving certificate signed by the cluster CA).

Requests carry the same credentials as to the API server: the cache checks bearer
tokens (TokenReview), so a context that authenticates with a client certificate only
reads from the API server.

``CachingClient`` is a ``Client`` whose reads of what the cache holds (``get`` and
``list`` of StatefulSets, Pods, Services, Nodes, Events) go to the cache, and
everything else (writes, watches, logs, other kinds) to the API server. When the cache
cannot answer (unreachable, still loading, an error of its own) it falls back to the
API server, says so once through ``on_fallback``, and stops asking it for the rest of
the process. 403 and 404 are answers, not failures: the cache applies the same RBAC.

Read-your-writes: after a write, ``record_write`` keeps the written object's
resourceVersion (per kubeconfig context) in ``~/.cache/ant/last-write.json`` for
``WRITE_WINDOW`` seconds; reads of StatefulSets (and the job endpoint) through the
cache in that window ask it to wait until it has seen that version (the cache answers
504 after a short wait if it has not: the read then goes to the API server).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ant.errors import (
    AntError,
    BadRequest,
    ConfigError,
    DecodeError,
    Forbidden,
    NotFound,
    ServerTimeout,
)
from ant.jobs import schema
from ant.jobs.documents import API_VERSION
from ant.jobs.model import Job, JobStatus, from_metadata
from ant.kube import codec
from ant.kube import resources as r
from ant.kube.client import Client, ObjectList, Resource, api_path
from ant.kube.config import KubeConfig, user_cache_dir, write_private
from ant.kube.transport import ACCEPT_PROTOBUF, Deadline, RetryPolicy, Transport

if TYPE_CHECKING:  # the queue's only: not on the path of a list
    from ant.jobs.capacity import NodeUsage

T = TypeVar("T")
Jobs = list[Job]  # (inside CachingClient, `list` is the method)

EXTENSION = "ant.dev/cache"
WRITE_WINDOW = 60.0
JOB_LIST = (API_VERSION, "JobList")
# What the cache serves, by (group, plural): reads of anything else go to the API server.
CACHED = frozenset(
    (res.group, res.plural) for res in (r.STATEFULSETS, r.PODS, r.SERVICES, r.NODES, r.EVENTS)
)


@dataclass(frozen=True)
class CacheSettings:
    url: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False


def settings(
    kubeconfig: KubeConfig, url: str | None, env: Mapping[str, str]
) -> CacheSettings | None:
    """Where the cache is for this context (None: no cache)."""
    ext = kubeconfig.extensions.get(EXTENSION)
    ext = ext if isinstance(ext, Mapping) else {}
    url = url or ext.get("url") or None
    if not url or url.strip().lower() in ("none", "off", "false"):
        return None
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"cache URL {url!r} is not an http(s) URL", hint="e.g. https://host:8443")
    ca_file = env.get("ANT_CACHE_CA") or ext.get("certificate-authority") or None
    ca_data_text = ext.get("certificate-authority-data")
    ca_data = None
    if not ca_file and isinstance(ca_data_text, str) and ca_data_text:
        try:
            ca_data = base64.b64decode(ca_data_text, validate=True)
        except ValueError as e:
            raise ConfigError(f"{EXTENSION}: certificate-authority-data is not base64") from e
    if not ca_file and ca_data is None:  # the cluster's CA
        ca_file, ca_data = kubeconfig.cluster.ca_file, kubeconfig.cluster.ca_data
    return CacheSettings(
        url=url.rstrip("/"),
        ca_file=ca_file,
        ca_data=ca_data,
        insecure=bool(ext.get("insecure-skip-tls-verify", False)),
    )


def uses_bearer_token(kubeconfig: KubeConfig) -> bool:
    user = kubeconfig.user
    return bool(user.token or user.token_file or user.exec or user.auth_provider)


def cache_transport(
    kubeconfig: KubeConfig,
    cache: CacheSettings,
    deadline: Deadline | None = None,
    *,
    stdlib_http: bool = False,
) -> Transport:
    """The API server's credentials, pointed at the cache; no retries (fall back instead).

    ``deadline``: the command's, shared with the API server's transport; ``stdlib_http``:
    the same engine as the API server's (the ``ant`` command's spares importing requests)."""
    cluster = replace(
        kubeconfig.cluster,
        server=cache.url,
        ca_file=cache.ca_file,
        ca_data=cache.ca_data,
        insecure_skip_tls_verify=cache.insecure,
        tls_server_name=None,
        proxy_url=None,
    )
    return Transport.from_kubeconfig(
        replace(kubeconfig, cluster=cluster),
        retry=RetryPolicy(attempts=1),
        connect_timeout=2.0,
        timeout=15.0,
        deadline=deadline,
        stdlib_http=stdlib_http,
    )


# --- read-your-writes ----------------------------------------------------------------


def last_write_file(env: Mapping[str, str]) -> Path:
    return user_cache_dir(env) / "last-write.json"


def write_key(kubeconfig: KubeConfig) -> str:
    return f"{kubeconfig.context}@{kubeconfig.cluster.server}"


def record_write(path: Path, key: str, resource_version: str, now: float | None = None) -> None:
    """Remember the resourceVersion of this context's last write (file mode 0600)."""
    if not resource_version:
        return
    now = time.time() if now is None else now
    entries = {k: v for k, v in _read(path).items() if now - float(v.get("at", 0)) < WRITE_WINDOW}
    entries[key] = {"resourceVersion": resource_version, "at": now}
    write_private(path, json.dumps(entries))


def newest(resource_versions: Iterable[str]) -> str:
    """The highest resourceVersion (etcd revisions are integers); "" when there is none."""
    numbers = [(int(rv), rv) for rv in resource_versions if rv.isdigit()]
    return max(numbers)[1] if numbers else ""


def recent_write(path: Path, key: str, now: float | None = None) -> str:
    """The resourceVersion of this context's last write if it is recent, else ""."""
    entry = _read(path).get(key)
    now = time.time() if now is None else now
    if not isinstance(entry, dict) or now - float(entry.get("at", 0)) >= WRITE_WINDOW:
        return ""
    return str(entry.get("resourceVersion") or "")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- the client ------------------------------------------------------------------------


class CachingClient(Client):
    """Reads of cached kinds from the cache; everything else, and every fallback, from
    the API server (``api``)."""

    def __init__(
        self,
        cache: Client,
        api: Client,
        *,
        on_fallback: Callable[[str], None] = lambda message: None,
        min_resource_version: str = "",
    ) -> None:
        super().__init__(api.transport)
        self.cache = cache
        self.api = api
        self.on_fallback = on_fallback
        self.min_resource_version = min_resource_version
        self.active = True

    def _serves(self, resource: Resource[Any]) -> bool:
        return self.active and (resource.group, resource.plural) in CACHED

    def _rv(self, resource: Resource[Any]) -> str | None:
        """The resourceVersion to wait for: the last write's, for StatefulSets."""
        if resource.plural == "statefulsets" and self.min_resource_version:
            return self.min_resource_version
        return None

    def fall_back(self, error: AntError) -> None:
        """Note why the cache could not answer; stop using it unless it was only behind."""
        if isinstance(error, ServerTimeout):
            self.on_fallback(
                "the ant cache has not caught up with your last write yet; "
                "reading from the API server"
            )
            return
        self.active = False
        self.on_fallback(
            f"ant cache {self.cache.transport.server}: {error}; reading from the API server"
        )

    def get(self, resource: Resource[T], name: str, namespace: str | None = None) -> T:
        if self._serves(resource):
            try:
                resp = self.cache.transport.request(
                    "GET",
                    resource.path(namespace, name),
                    params={"resourceVersion": self._rv(resource)},
                    accept=resource.accept,
                )
                return self.cache._decode(resource, resp)
            except (Forbidden, NotFound):
                raise
            except AntError as e:
                self.fall_back(e)
        return super().get(resource, name, namespace)

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
        if self._serves(resource) and resource_version_match in (None, "NotOlderThan"):
            try:
                return self.cache.list(
                    resource,
                    namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    resource_version=resource_version or self._rv(resource),
                )
            except Forbidden:
                raise
            except AntError as e:
                self.fall_back(e)
        return super().list(
            resource,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )

    def capacity(self) -> tuple[NodeUsage, ...] | None:
        """The cache's node totals (``/ant/v1/capacity``); None if it cannot say (it does
        not watch every namespace, or is down) or will not (you may not list nodes)."""
        from ant.jobs.capacity import NodeUsage

        if not self.active:
            return None
        try:
            resp = self.cache.transport.request("GET", api_path("ant", "v1", "capacity"))
            return tuple(
                NodeUsage(
                    name=str(n["name"]),
                    ready=bool(n["ready"]),
                    allocatable={k: Fraction(str(v)) for k, v in n["allocatable"].items()},
                    requested={k: Fraction(str(v)) for k, v in n["requested"].items()},
                )
                for n in resp.json()["nodes"]
            )
        except (Forbidden, BadRequest):
            return None  # may not list nodes, or the cache does not watch every namespace
        except AntError as e:
            self.fall_back(e)
            return None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # not the document this ant reads: as if the cache had none

    def jobs(
        self,
        namespace: str | None,
        *,
        user_label: str | None = None,
        mine: bool = False,
        selector: str | None = None,
        statuses: Iterable[str] = (),
        view: str = "table",
        cluster: str = "",
    ) -> Jobs | None:
        """``ant list``'s rows from the job endpoint, as jobs (tagged with ``cluster``);
        None if the cache can't say."""
        if not self.active:
            return None
        scope = ("namespaces", namespace) if namespace else ()
        path = api_path("ant", "v1", *scope, "jobs")
        params = {
            "user": user_label,
            "mine": "true" if mine and not user_label else None,
            "selector": selector,
            "status": ",".join(sorted(statuses)) or None,
            "view": view,
            "resourceVersion": self.min_resource_version or None,
        }
        try:
            resp = self.cache.transport.request("GET", path, params=params, accept=ACCEPT_PROTOBUF)
            return decode_jobs(resp.content, cluster)
        except Forbidden:
            raise
        except AntError as e:
            self.fall_back(e)
            return None


def cached_jobs(
    reader: Client,
    namespace: str | None,
    *,
    user_label: str | None,
    mine: bool,
    selector: str | None,
    statuses: Iterable[str],
    view: str,
    cluster: str = "",
) -> list[Job] | None:
    """The job endpoint's answer when ``reader`` reads through a cache, else None."""
    if not isinstance(reader, CachingClient):
        return None
    return reader.jobs(
        namespace,
        user_label=user_label,
        mine=mine,
        selector=selector,
        statuses=statuses,
        view=view,
        cluster=cluster,
    )


def cached_capacity(reader: Client) -> tuple[NodeUsage, ...] | None:
    """The cache's node totals when ``reader`` reads through a cache, else None."""
    return reader.capacity() if isinstance(reader, CachingClient) else None


# --- job rows -> jobs ------------------------------------------------------------------


@dataclass(frozen=True)
class CachedJob(Job):
    """A job rebuilt from a cache row: no pods, but their summary (``nodes``)."""

    node_count: int = 0

    @property
    def nodes(self) -> int:
        return self.node_count


def decode_jobs(body: bytes, cluster: str = "") -> list[Job]:
    """A JobList's rows as jobs; ``cluster``: the context they were read through, when
    several are asked (tagged as they are built, not copied afterwards)."""
    from ant.cache.proto import jobs_pb2

    env = codec.decode_envelope(body)
    if (env.api_version, env.kind) != JOB_LIST:
        raise DecodeError(f"expected {'/'.join(JOB_LIST)}, got {env.api_version} {env.kind}")
    try:
        message = jobs_pb2.JobList.FromString(env.raw)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise DecodeError(f"JobList does not parse: {e}") from e
    full = message.view == "full"
    return [job_from_row(row, full=full, cluster=cluster) for row in message.items]


# Every field a cache row leaves as absent labels and annotations leave it: derived once,
# not for each of thousands of rows.
_BLANK_ROW: dict[str, Any] = CachedJob(
    name="",
    namespace="",
    status=JobStatus.PENDING,
    replicas=0,
    ready=0,
    pending=0,
    updated=0,
    created_at=None,
    update_revision="",
    current_revision="",
    **from_metadata({}, {}),
).__dict__


_STATUSES = {s.value: s for s in JobStatus}


def job_from_row(row: Any, *, full: bool, cluster: str = "") -> Job:
    """The Job ``ant.jobs.model.job_from`` makes, from the row's metadata and summary.

    The full view's labels and annotations go through ``model.from_metadata``, so every
    field derived from them is derived as from the API server; a table row carries only
    ant's own labels and the full user name, which leave the rest as absent metadata does
    (``_BLANK_ROW``). Pod-derived fields come from the row.
    """
    fields = _BLANK_ROW.copy()  # then item by item: 4 times quicker than a literal's **
    if full:
        fields.update(from_metadata(codec.map_dict(row.labels), codec.map_dict(row.annotations)))
    else:  # a table row: ant's own labels only, no annotation but the full user name
        user_full = fields["user_full"] = row.user_full
        fields["user"] = row.user
        fields["priority"] = row.priority
        fields["annotations"] = {schema.CREATED_BY_FULL: user_full} if user_full else {}
    status = _STATUSES.get(row.status)
    if status is None:
        raise DecodeError(f"job {row.name!r} has an unknown status {row.status!r}")
    created_at = row.created_at
    fields["name"] = row.name
    fields["namespace"] = row.namespace
    fields["status"] = status
    fields["replicas"] = row.replicas
    fields["ready"] = row.ready
    fields["pending"] = row.pending
    fields["updated"] = row.updated
    fields["created_at"] = datetime.fromtimestamp(created_at, UTC) if created_at else None
    fields["preemptions"] = row.preemptions
    fields["gang"] = row.gang
    fields["node_count"] = row.nodes
    fields["cluster"] = cluster
    return CachedJob.from_fields(fields)


def reader_for(
    kubeconfig: KubeConfig,
    url: str | None,
    env: Mapping[str, str],
    api: Client,
    *,
    on_fallback: Callable[[str], None],
    on_skip: Callable[[str], None],
) -> Client:
    """``api`` itself, or a CachingClient when a cache is configured for this context."""
    cache = settings(kubeconfig, url, env)
    if cache is None:
        return api
    if not uses_bearer_token(kubeconfig):
        on_skip(
            f"context {kubeconfig.context} authenticates with a client certificate, which the "
            "ant cache cannot check; reading from the API server"
        )
        return api
    return CachingClient(
        Client(
            cache_transport(
                kubeconfig, cache, api.transport.deadline, stdlib_http=api.transport.stdlib_http
            )
        ),
        api,
        on_fallback=on_fallback,
        min_resource_version=recent_write(last_write_file(env), write_key(kubeconfig)),
    )
