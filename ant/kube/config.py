"""Where to connect and as whom: kubeconfig files and in-cluster service accounts.

ant reads kubeconfig itself (YAML, a few dozen lines of logic) because the
``kubernetes`` package's loader costs ~0.45 s to import, more than the whole of
``ant list`` should take. Legacy ``auth-provider`` users (gcp, oidc, azure) are
the one case that still goes through that loader, lazily (see ``ant.kube.auth``).

Differences from kubectl, on purpose:
- ``KUBECONFIG`` lists are merged like kubectl: for every named cluster, user and
  context the first file that defines it wins, and so does the first non-empty
  ``current-context``.
- Basic auth (username/password) is not supported; it was removed from Kubernetes.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant.errors import ConfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ExecConfig:
    """A ``client.authentication.k8s.io`` credential plugin."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    interactive_mode: str = "IfAvailable"
    provide_cluster_info: bool = False
    install_hint: str = ""


@dataclass(frozen=True)
class Cluster:
    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None


@dataclass(frozen=True)
class User:
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    client_cert_file: str | None = None
    client_cert_data: bytes | None = field(default=None, repr=False)
    client_key_file: str | None = None
    client_key_data: bytes | None = field(default=None, repr=False)
    exec: ExecConfig | None = None
    auth_provider: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KubeConfig:
    """One resolved context: the cluster, the user and the default namespace."""

    context: str
    cluster: Cluster
    user: User
    namespace: str = "default"
    source: str = ""
    # The raw kubeconfig documents, only kept for the auth-provider fallback.
    raw: tuple[Mapping[str, Any], ...] = field(default=(), repr=False, compare=False)
    # Context extensions (e.g. ant's cache URL), by extension name.
    extensions: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def kubeconfig_paths(explicit: str | None, env: Mapping[str, str]) -> list[Path]:
    """The files to read: ``--kubeconfig``, else ``$KUBECONFIG`` (a list), else ~/.kube/config."""
    if explicit:
        return [Path(explicit).expanduser()]
    listed = env.get("KUBECONFIG", "")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    home = env.get("HOME") or str(Path.home())
    return [Path(home) / ".kube" / "config"]


def user_cache_dir(env: Mapping[str, str]) -> Path:
    """ant's own cache directory: ``$XDG_CACHE_HOME/ant``, else ``~/.cache/ant``."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "ant"


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once, readable by its owner only (0600, in a 0700
    directory when it makes one): for what ant remembers under ``user_cache_dir``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def credential_key(kc: KubeConfig) -> str:
    """A hex SHA-256 naming this server and credential, for what ant remembers about them
    on disk. It identifies the credential without holding it: never store the token."""
    import hashlib
    import json

    user, plugin = kc.user, kc.user.exec
    material = {
        "server": kc.cluster.server,
        "token": user.token,
        "tokenFile": user.token_file,
        "cert": user.client_cert_file,
        "certData": user.client_cert_data.hex() if user.client_cert_data else None,
        "exec": [plugin.command, plugin.args, plugin.env] if plugin else None,
        "authProvider": user.auth_provider,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Files:
    """The kubeconfig files as ``load`` finds them, parsed: read once per command, however
    many contexts it resolves from them (one per cluster across clusters). Never modified."""

    looked_at: tuple[Path, ...]
    read: tuple[Path, ...]  # those that exist, in order
    docs: tuple[Mapping[str, Any], ...]  # theirs

    @property
    def source(self) -> str:
        return os.pathsep.join(map(str, self.read))


def read_files(kubeconfig: str | None, env: Mapping[str, str]) -> Files:
    """``--kubeconfig``, else ``KUBECONFIG``'s list, else ``~/.kube/config``, parsed."""
    paths = kubeconfig_paths(kubeconfig, env)
    # os.path.isfile, not Path.is_file: a name too long to stat is "not a file", not an OSError.
    existing = [p for p in paths if os.path.isfile(p)]
    if kubeconfig and not existing:
        raise ConfigError(
            f"kubeconfig {kubeconfig} is not a readable file",
            hint="check --kubeconfig / ANT_KUBECONFIG",
        )
    return Files(tuple(paths), tuple(existing), tuple(_read_yaml(p) for p in existing))


def load(
    kubeconfig: str | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    files: Files | None = None,
) -> KubeConfig:
    """Resolve a context from kubeconfig (``files``: read already), or the in-cluster
    service account.

    In-cluster is used only when no kubeconfig file exists and no context was
    asked for, as client-go does.
    """
    env = os.environ if env is None else env
    files = files or read_files(kubeconfig, env)
    if not files.docs:
        if context is None and "KUBERNETES_SERVICE_HOST" in env:
            return in_cluster(env)
        raise ConfigError(
            f"no kubeconfig found (looked at {', '.join(map(str, files.looked_at))})",
            hint="set KUBECONFIG or pass --kubeconfig",
        )
    return _resolve(files.docs, context, source=files.source)


def context_names(files: Files) -> list[str]:
    """Every context of the kubeconfig files, in file order."""
    return list(_named(files.docs, "contexts"))


def in_cluster(env: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeConfig:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = sa_dir / "token"
    if not host or not os.path.isfile(token_file):
        raise ConfigError(
            "not running in a cluster: no service account token",
            hint="set KUBECONFIG or pass --kubeconfig",
        )
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    ns_file = sa_dir / "namespace"
    namespace = ns_file.read_text().strip() if os.path.isfile(ns_file) else "default"
    return KubeConfig(
        context="in-cluster",
        cluster=Cluster(server=f"https://{host}:{port}", ca_file=str(sa_dir / "ca.crt")),
        user=User(token_file=str(token_file)),
        namespace=namespace,
        source="in-cluster",
    )


def _read_yaml(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(path.read_text(), Loader=loader)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {_first_line(e)}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    # Relative file references in a kubeconfig are relative to the file itself.
    return {**doc, "__dir__": str(path.parent)}


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _named(docs: tuple[Mapping[str, Any], ...], section: str) -> dict[str, tuple[Any, str]]:
    """Entries of a named list across files (first wins), with the file's directory."""
    found: dict[str, tuple[Any, str]] = {}
    for doc in docs:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") not in found:
                found[str(entry.get("name"))] = (entry.get(section[:-1]) or {}, doc["__dir__"])
    return found


def _resolve(docs: tuple[Mapping[str, Any], ...], wanted: str | None, source: str) -> KubeConfig:
    contexts = _named(docs, "contexts")
    current = wanted or next((d["current-context"] for d in docs if d.get("current-context")), "")
    if not current:
        raise ConfigError(
            f"kubeconfig {source} has no current-context", hint="pass --context or set one"
        )
    if current not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise ConfigError(f"context {current!r} not found in kubeconfig (known: {known})")
    ctx, _ = contexts[current]
    clusters, users = _named(docs, "clusters"), _named(docs, "users")
    cluster_name, user_name = ctx.get("cluster", ""), ctx.get("user", "")
    if cluster_name not in clusters:
        raise ConfigError(
            f"context {current!r} names cluster {cluster_name!r}, which is not defined"
        )
    cluster_doc, cluster_dir = clusters[cluster_name]
    user_doc, user_dir = users.get(user_name, ({}, ""))
    return KubeConfig(
        context=current,
        cluster=_cluster(cluster_doc, cluster_dir, current),
        user=_user(user_doc, user_dir, user_name),
        namespace=ctx.get("namespace") or "default",
        source=source,
        raw=docs,
        extensions={
            e.get("name", ""): e.get("extension")
            for e in ctx.get("extensions") or []
            if isinstance(e, dict)
        },
    )


def context_namespaces(kc: KubeConfig) -> list[str]:
    """The namespaces kubeconfig's contexts name for the cluster ``kc`` talks to (its own
    first): where its user is likely to work, when the API server will not list them."""
    clusters = _named(kc.raw, "clusters")
    found = [kc.namespace]
    for ctx, _ in _named(kc.raw, "contexts").values():
        cluster, _dir = clusters.get(str(ctx.get("cluster", "")), ({}, ""))
        if cluster.get("server", "").rstrip("/") == kc.cluster.server.rstrip("/"):
            found.append(str(ctx.get("namespace") or "default"))
    return list(dict.fromkeys(found))


def _path(value: str | None, base: str) -> str | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else Path(base) / p)


def _data(value: str | None, what: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as e:
        raise ConfigError(f"kubeconfig {what} is not valid base64") from e


def _cluster(doc: Mapping[str, Any], base: str, context: str) -> Cluster:
    server = doc.get("server")
    if not server:
        raise ConfigError(f"context {context!r}: its cluster has no server URL")
    return Cluster(
        server=str(server).rstrip("/"),
        ca_file=_path(doc.get("certificate-authority"), base),
        ca_data=_data(doc.get("certificate-authority-data"), "certificate-authority-data"),
        insecure_skip_tls_verify=bool(doc.get("insecure-skip-tls-verify", False)),
        tls_server_name=doc.get("tls-server-name"),
        proxy_url=doc.get("proxy-url"),
    )


def _user(doc: Mapping[str, Any], base: str, name: str) -> User:
    if doc.get("username") or doc.get("password"):
        raise ConfigError(f"user {name!r} uses basic auth, which Kubernetes no longer supports")
    exec_doc = doc.get("exec")
    return User(
        token=doc.get("token"),
        token_file=_path(doc.get("tokenFile"), base),
        client_cert_file=_path(doc.get("client-certificate"), base),
        client_cert_data=_data(doc.get("client-certificate-data"), "client-certificate-data"),
        client_key_file=_path(doc.get("client-key"), base),
        client_key_data=_data(doc.get("client-key-data"), "client-key-data"),
        exec=_exec(exec_doc, name) if exec_doc else None,
        auth_provider=doc.get("auth-provider"),
    )


def _exec(doc: Mapping[str, Any], user: str) -> ExecConfig:
    if not doc.get("command"):
        raise ConfigError(f"user {user!r}: exec credential plugin has no command")
    return ExecConfig(
        command=str(doc["command"]),
        args=tuple(str(a) for a in doc.get("args") or ()),
        env=tuple((str(e["name"]), str(e["value"])) for e in doc.get("env") or ()),
        api_version=str(doc.get("apiVersion", "client.authentication.k8s.io/v1")),
        interactive_mode=str(doc.get("interactiveMode", "IfAvailable")),
        provide_cluster_info=bool(doc.get("provideClusterInfo", False)),
        install_hint=str(doc.get("installHint", "")),
    )
