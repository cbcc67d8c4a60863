"""Credentials for requests to the API server.

Each ``Auth`` adds its header to a request and may hold a client certificate.
After a 401 the transport calls ``refresh()`` once: token files are re-read and
exec plugins re-run (their cached credential may have been revoked early), and
the request is retried when that produced something new.

Tokens never reach logs or error messages: ``repr`` hides them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ant.errors import ConfigError
from ant.kube.config import Cluster, ExecConfig, KubeConfig

ClientCert = tuple[str, str]  # (certificate file, key file), as requests takes them


class Auth(Protocol):
    def headers(self) -> Mapping[str, str]: ...

    def client_cert(self) -> ClientCert | None: ...

    def refresh(self) -> bool:
        """After a 401: try for new credentials; True if the request is worth retrying."""
        ...


class NoAuth:
    def headers(self) -> Mapping[str, str]:
        return {}

    def client_cert(self) -> ClientCert | None:
        return None

    def refresh(self) -> bool:
        return False


@dataclass
class StaticAuth:
    """A fixed bearer token and/or client certificate from kubeconfig."""

    token: str | None = field(default=None, repr=False)
    cert: ClientCert | None = None

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client_cert(self) -> ClientCert | None:
        return self.cert

    def refresh(self) -> bool:
        return False


@dataclass
class TokenFileAuth:
    """A token re-read from its file when the file changes (service account tokens rotate)."""

    path: str
    cert: ClientCert | None = None
    _token: str = field(default="", repr=False)
    _mtime: float = -1.0

    def headers(self) -> Mapping[str, str]:
        self._reload()
        return {"Authorization": f"Bearer {self._token}"}

    def client_cert(self) -> ClientCert | None:
        return self.cert

    def refresh(self) -> bool:
        before = self._token
        self._mtime = -1.0
        self._reload()
        return self._token != before

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime != self._mtime:
                self._token = Path(self.path).read_text().strip()
                self._mtime = mtime
        except OSError as e:
            raise ConfigError(f"cannot read token file {self.path}: {e.strerror}") from e


@dataclass
class ExecAuth:
    """A ``client.authentication.k8s.io`` exec plugin, re-run when its credential expires."""

    config: ExecConfig
    cluster: Cluster
    fallback_cert: ClientCert | None = None
    _token: str | None = field(default=None, repr=False)
    _cert: ClientCert | None = None
    _expires: float | None = None
    _fetched: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def headers(self) -> Mapping[str, str]:
        self._ensure()
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def client_cert(self) -> ClientCert | None:
        self._ensure()
        return self._cert or self.fallback_cert

    def refresh(self) -> bool:
        with self._lock:
            self._run()
        return True

    def _ensure(self) -> None:
        with self._lock:
            # Renew a little before expiry so a request does not race the deadline.
            if not self._fetched or (
                self._expires is not None and time.time() > self._expires - 10
            ):
                self._run()

    def _run(self) -> None:
        cfg = self.config
        exec_info: dict[str, Any] = {
            "apiVersion": cfg.api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
        if cfg.provide_cluster_info:
            exec_info["spec"]["cluster"] = {
                "server": self.cluster.server,
                "insecure-skip-tls-verify": self.cluster.insecure_skip_tls_verify,
            }
        env = {**os.environ, **dict(cfg.env), "KUBERNETES_EXEC_INFO": json.dumps(exec_info)}
        command = shutil.which(cfg.command) or cfg.command
        try:
            done = subprocess.run(
                [command, *cfg.args],
                env=env,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        except FileNotFoundError as e:
            hint = cfg.install_hint.strip().splitlines()[0] if cfg.install_hint.strip() else None
            raise ConfigError(f"exec credential plugin {cfg.command!r} not found", hint=hint) from e
        except subprocess.TimeoutExpired as e:
            raise ConfigError(f"exec credential plugin {cfg.command!r} timed out after 60s") from e
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            detail = f": {err[-1]}" if err else ""
            raise ConfigError(
                f"exec credential plugin {cfg.command!r} failed (exit {done.returncode}){detail}"
            )
        try:
            status = json.loads(done.stdout)["status"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"exec credential plugin {cfg.command!r} printed no ExecCredential status"
            ) from e
        self._token = status.get("token")
        cert_data, key_data = status.get("clientCertificateData"), status.get("clientKeyData")
        self._cert = (
            (material_file(cert_data.encode()), material_file(key_data.encode()))
            if cert_data and key_data
            else None
        )
        if not self._token and not self._cert:
            raise ConfigError(f"exec credential plugin {cfg.command!r} returned no credential")
        expiry = status.get("expirationTimestamp")
        self._expires = _parse_time(expiry) if expiry else None
        self._fetched = True


@dataclass
class AuthProviderAuth:
    """Legacy ``auth-provider`` users (oidc, gcp, azure) via the kubernetes package's loader.

    Imported only for these users: the loader costs ~0.45 s to import.
    """

    kubeconfig: KubeConfig = field(repr=False)
    cert: ClientCert | None = None
    _header: str | None = field(default=None, repr=False)

    def headers(self) -> Mapping[str, str]:
        if self._header is None:
            self._header = self._load()
        return {"Authorization": self._header}

    def client_cert(self) -> ClientCert | None:
        return self.cert

    def refresh(self) -> bool:
        self._header = None
        return True

    def _load(self) -> str:
        from copy import deepcopy

        from kubernetes import client as k8s_client
        from kubernetes.config import kube_config

        doc = {k: v for k, v in self.kubeconfig.raw[0].items() if k != "__dir__"}
        # A copy: the loader writes refreshed tokens into it, and the parsed files are shared.
        merged = deepcopy(
            {
                "contexts": [c for d in self.kubeconfig.raw for c in d.get("contexts") or []],
                "clusters": [c for d in self.kubeconfig.raw for c in d.get("clusters") or []],
                "users": [u for d in self.kubeconfig.raw for u in d.get("users") or []],
                "current-context": self.kubeconfig.context,
                **{k: v for k, v in doc.items() if k not in ("contexts", "clusters", "users")},
            }
        )
        configuration = k8s_client.Configuration()
        loader_class: Any = kube_config.KubeConfigLoader  # untyped package
        try:
            loader_class(config_dict=merged, active_context=self.kubeconfig.context).load_and_set(
                configuration
            )
        except Exception as e:  # the loader raises bare exceptions of many kinds
            raise ConfigError(f"auth-provider login failed: {e}") from e
        # The key's name changed across kubernetes package versions.
        keys = configuration.api_key
        header = keys.get("BearerToken") or keys.get("authorization")
        if not header:
            raise ConfigError("auth-provider returned no token")
        return str(header)


def for_kubeconfig(kc: KubeConfig) -> Auth:
    """The Auth a kubeconfig user asks for."""
    user = kc.user
    cert = _client_cert(kc)
    if user.exec is not None:
        return ExecAuth(user.exec, kc.cluster, fallback_cert=cert)
    if user.auth_provider is not None:
        return AuthProviderAuth(kc, cert=cert)
    if user.token:
        return StaticAuth(token=user.token, cert=cert)
    if user.token_file:
        return TokenFileAuth(user.token_file, cert=cert)
    if cert:
        return StaticAuth(cert=cert)
    return NoAuth()


def _client_cert(kc: KubeConfig) -> ClientCert | None:
    user = kc.user
    cert = user.client_cert_file or (
        material_file(user.client_cert_data) if user.client_cert_data else None
    )
    key = user.client_key_file or (
        material_file(user.client_key_data) if user.client_key_data else None
    )
    if bool(cert) != bool(key):
        raise ConfigError(f"context {kc.context!r}: a client certificate needs both cert and key")
    return (cert, key) if cert and key else None


def _parse_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as e:
        raise ConfigError(f"exec credential has a bad expirationTimestamp {value!r}") from e


_material_dir: str | None = None
_material_lock = threading.Lock()


def material_file(data: bytes) -> str:
    """Write inline key/cert material to a private file (requests only takes paths).

    The files live in one 0700 directory per process, removed at exit.
    """
    global _material_dir  # noqa: PLW0603 - one directory per process
    with _material_lock:
        if _material_dir is None:
            _material_dir = tempfile.mkdtemp(prefix="ant-")
            atexit.register(shutil.rmtree, _material_dir, True)
        fd, path = tempfile.mkstemp(dir=_material_dir, suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path
