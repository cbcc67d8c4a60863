#!/usr/bin/env python3
"""Start, stop and inspect ant's local dev cluster.

    cluster.py up [--kueue] [--count N]
                        start it in the background (idempotent); prints only the kubeconfig
                        path; --kueue also starts Kueue (kueue_component.py); --count N
                        starts N clusters side by side and prints a kubeconfig with a
                        context USER@dev-I for each user of each (docs/clusters.md)
    cluster.py down     stop every process it (and its side-by-side clusters) started and
                        remove their state
    cluster.py status   show what runs (exit 0 only when everything runs)
    cluster.py env      print `export KUBECONFIG=...`
    cluster.py restart-apiserver [--down-seconds S] [--compact]
                        kill the apiserver (SIGKILL, a crash), keep etcd and its data, start
                        it again after S seconds; returns once it is ready (for fault tests)
    cluster.py compact-etcd
                        compact etcd past every resourceVersion a client holds (410 Gone)

The cluster is made of real upstream binaries built by devcluster/build.sh: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, and a kwok controller
that plays the kubelet for a pool of fake TPU nodes (and serves `kubectl logs`).
Everything listens on 127.0.0.1; see docs/development.md for ports, users, RBAC.

`down`, `status` and `env` use only the standard library (the Makefile runs
`down` with the system python3); `up` also needs `cryptography` for the PKI.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIG_TEMPLATES = HERE / "config"

CLUSTER_NAME = "ant-dev"
# What a running cluster serves (flags, users, RBAC, kwok stages). Bump it with every such
# change: `up` replaces a running cluster of an older revision, and keeps one of the same
# or a newer revision (so worktrees on older code never flip a shared cluster back).
REVISION = 3
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

# Start order; `down` stops them in reverse (etcd last).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BINARIES = (*COMPONENTS, "kubectl")
# Started only when asked for (`up --kueue`, kueue_component.py); stopped first by `down`.
OPTIONAL_COMPONENTS = ("kueue",)
# Started by every `up` once the cluster runs (controller_component.py), stopped first by
# `down`: ant's own servers, run with the Python that runs `up`.
ADDONS = ("ant-controller",)

# Fixed, uncommon loopback ports below Linux's ephemeral range (32768+): a block
# starting at ANT_DEVCLUSTER_PORT_BASE, each overridable on its own.
DEFAULT_PORT_BASE = 26443
PORT_OFFSETS = {
    "kube-apiserver": 0,
    "etcd": 1,
    "etcd-peer": 2,
    "kube-controller-manager": 3,
    "kube-scheduler": 4,
    "kwok": 5,
}

RESEARCHERS_GROUP = "ant:researchers"
RESEARCHER_CLUSTERROLE = "ant:researcher"
RESEARCHER_CLUSTERWIDE_CLUSTERROLE = "ant:researcher-cluster"
VIEWER_CLUSTERROLE = "ant:viewer"
VIEWER = "viewer"  # read-only in `research`
# token users: name -> groups
TOKEN_USERS = {
    "admin": ["system:masters"],
    "alice": [RESEARCHERS_GROUP],
    "bob": [RESEARCHERS_GROUP],
    VIEWER: [],
}
CERT_USER = "carol"  # client-certificate user, CN=carol, no groups
# `queued` is where queued (Kueue) jobs go; researchers have the same rights as in `research`.
RESEARCHER_NAMESPACES = ("research", "queued")
NAMESPACES = (*RESEARCHER_NAMESPACES, "bob-private")

NODE_PREFIX = "tpu-node-"
NODE_TPUS = 4
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

# Processes get SIGTERM, then SIGKILL after this many seconds.
STOP_TIMEOUT = float(os.environ.get("ANT_DEVCLUSTER_STOP_TIMEOUT", "10"))
START_TIMEOUT = float(os.environ.get("ANT_DEVCLUSTER_START_TIMEOUT", "120"))

# Native gang scheduling (KEP-4671) and workload-aware preemption, beta in v1.37:
# GenericWorkload serves scheduling.k8s.io Workload/PodGroup, makes the scheduler add its
# GangScheduling plugin and preempt PodGroups whole (disruptionMode All), and runs the
# controller-manager's PodGroup protection; PodGroupPreemptionPolicy (alpha) allows a
# PodGroup's own preemptionPolicy. The same gates go to apiserver, scheduler and
# controller-manager. ContainerRestartRules (KEP-5307, container-level restartPolicy and
# restartPolicyRules) is beta and on by default since v1.35; named so it stays on.
FEATURE_GATES = "GenericWorkload=true,PodGroupPreemptionPolicy=true,ContainerRestartRules=true"
# A beta API group is off unless asked for.
RUNTIME_CONFIG = "scheduling.k8s.io/v1beta1=true"

# `up --count N`: cluster I (2..N) lives in the state dir's sibling STATE-I and takes the
# block of ports CLUSTER_PORT_STRIDE * (I - 1) above the first cluster's base.
CLUSTER_PORT_STRIDE = 100
MAX_CLUSTERS = 9

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def log(msg: str) -> None:
    print(f"devcluster: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- layout


def default_state_dir() -> Path:
    raw = os.environ.get("ANT_DEVCLUSTER_STATE") or "~/.cache/ant/devcluster/state"
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    """Where everything lives inside the state dir."""

    state: Path

    @property
    def lock(self) -> Path:  # next to the state dir, so `down` can remove the dir while locked
        return self.state.with_name(self.state.name + ".lock")

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def tokens(self) -> Path:
        return self.state / "tokens"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def cluster_json(self) -> Path:
        return self.state / "cluster.json"

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def token_file(self, user: str) -> Path:
        return self.tokens / f"{user}.token"

    def component_kubeconfig(self, component: str) -> Path:
        return self.config / f"{component}.kubeconfig"

    def cert(self, name: str) -> Path:
        return self.pki / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / f"{name}.key"


def resolve_ports(offsets: dict[str, int] = PORT_OFFSETS) -> dict[str, int]:
    base = int(os.environ.get("ANT_DEVCLUSTER_PORT_BASE", DEFAULT_PORT_BASE))
    return {name: int(os.environ.get(port_env_var(name), base + o)) for name, o in offsets.items()}


def port_env_var(name: str) -> str:
    return "ANT_DEVCLUSTER_" + name.upper().replace("-", "_") + "_PORT"


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Serialise up/down across processes (e.g. several pytest sessions)."""
    layout.lock.parent.mkdir(parents=True, exist_ok=True)
    with open(layout.lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)


def write_cluster_json(layout: Layout, info: dict[str, Any]) -> None:
    """Replace cluster.json at once: readers never see half of it."""
    tmp = layout.cluster_json.with_suffix(".tmp")
    write_private(tmp, json.dumps(info, indent=2) + "\n", 0o644)
    tmp.replace(layout.cluster_json)


def read_cluster_json(layout: Layout) -> dict[str, Any] | None:
    try:
        return json.loads(layout.cluster_json.read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- processes


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_ours(pid: int, layout: Layout) -> bool:
    """A live process whose command line names our state dir (guards against PID reuse)."""
    _reap(pid)
    cmd = _proc_cmdline(pid)
    if not cmd or _is_zombie(pid):
        return False
    marker = str(layout.state) + os.sep  # "/x/state/" must not match "/x/state2/..."
    return any(marker in arg for arg in cmd[1:])


def recorded_pids(layout: Layout) -> dict[str, int]:
    pids = {}
    for component in (*COMPONENTS, *OPTIONAL_COMPONENTS, *ADDONS):
        try:
            pids[component] = int(layout.pid_file(component).read_text().strip())
        except (OSError, ValueError):
            continue
    return pids


def stray_pids(layout: Layout, known: set[int]) -> list[int]:
    """Our components still running without a pid file (e.g. the state dir was wiped by hand)."""
    found = []
    marker = str(layout.state) + os.sep  # "/x/state/" must not match "/x/state2/..."
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in known or pid == os.getpid():
            continue
        cmd = _proc_cmdline(pid)
        ours = Path(cmd[0]).name in (*BINARIES, *OPTIONAL_COMPONENTS) if cmd else False
        if not cmd or not (ours or cmd[1:3] == ["-m", "ant"]):  # an addon: python -m ant
            continue
        if any(marker in arg for arg in cmd[1:]) and not _is_zombie(pid):
            found.append(pid)
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Each component leads its own session/process group (setsid at spawn).
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def stop_pids(pids: list[int], layout: Layout, timeout: float = STOP_TIMEOUT) -> list[int]:
    """SIGTERM, wait, then SIGKILL. Returns the pids that had to be killed."""
    live = [p for p in pids if is_ours(p, layout)]
    for pid in live:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [p for p in live if is_ours(p, layout)]
    killed = list(live)
    for pid in live:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [p for p in live if is_ours(p, layout)]
    if live:
        log(f"processes {live} did not exit after SIGKILL")
    return killed


def stop_all(layout: Layout) -> int:
    """Stop every process of this cluster: recorded ones in reverse start order, then strays."""
    pids = recorded_pids(layout)
    stopped = 0
    if "kueue" in pids:
        import kueue_component  # its webhooks go before it does

        kueue_component.unregister(layout)
    # Clients first, then the apiserver, etcd last.
    phases = [
        [pids[c] for c in ADDONS if c in pids],
        [
            pids[c]
            for c in ("kueue", "kwok", "kube-scheduler", "kube-controller-manager")
            if c in pids
        ],
        [pids[c] for c in ("kube-apiserver",) if c in pids],
        [pids[c] for c in ("etcd",) if c in pids],
    ]
    for phase in phases:
        running = [p for p in phase if is_ours(p, layout)]
        stopped += len(running)
        for pid in stop_pids(running, layout):
            log(f"pid {pid} ignored SIGTERM for {STOP_TIMEOUT:.0f}s; killed")
    strays = stray_pids(layout, set(pids.values()))
    if strays:
        log(f"stopping {len(strays)} unrecorded process(es) of this cluster: {strays}")
        stop_pids(strays, layout)
        stopped += len(strays)
    return stopped


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in PROXY_VARS and k not in ("KUBECONFIG",) and not k.startswith("ETCD")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def spawn(layout: Layout, component: str, argv: list[str]) -> int:
    """Start a component detached: own session, stdin /dev/null, output to its log file."""
    log_path = layout.log_file(component)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with open(log_path, "a") as fh:
            fh.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S')} started: {' '.join(argv)}\n")
        pid = os.posix_spawn(
            argv[0],
            argv,
            child_env(),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(fd)
    write_private(layout.pid_file(component), f"{pid}\n")
    return pid


def exit_status(pid: int) -> int | None:
    """The exit code of a child of ours that has exited, else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if _proc_cmdline(pid) else -1
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


# --------------------------------------------------------------------------- HTTP


def https_context(ca: Path | None) -> ssl.SSLContext:
    if ca is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=str(ca))


def http(
    method: str,
    url: str,
    *,
    ca: Path | None = None,
    token: str | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 5,
) -> tuple[int, bytes]:
    """One request, proxies ignored; returns (status, body). Raises OSError when unreachable."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=https_context(ca)))
    opener = urllib.request.build_opener(*handlers)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    req.add_header("Accept", "application/json")
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Api:
    """A tiny JSON client for the apiserver, as admin."""

    def __init__(self, server: str, ca: Path, token: str) -> None:
        self.server, self.ca, self.token = server, ca, token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw = http(method, self.server + path, ca=self.ca, token=self.token, body=body)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def create(self, path: str, obj: dict[str, Any]) -> None:
        status, resp = self.call("POST", path, obj)
        if status not in (200, 201, 409):
            name = obj["metadata"]["name"]
            msg = resp.get("message") if isinstance(resp, dict) else resp
            raise RuntimeError(f"creating {obj['kind']} {name}: HTTP {status}: {msg}")


# --------------------------------------------------------------------------- PKI


class Pki:
    """Issues the dev cluster's certificates (EC P-256) into ``layout.pki``.

    ca:             apiserver/kwok serving certs, every client cert (--client-ca-file),
                    the kubelet-serving CA the apiserver checks kwok against.
    front-proxy-ca: only the apiserver's aggregation-layer client cert (--requestheader-*),
                    so a normal client cert can never assert X-Remote-User headers.
    """

    def __init__(self, layout: Layout) -> None:
        import datetime as dt

        self.layout = layout
        self.now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    @staticmethod
    def _usage(*, ca: bool) -> Any:
        from cryptography import x509

        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    def _save(self, file: str, cert: Any, key: Any) -> None:
        from cryptography.hazmat.primitives import serialization

        write_private(self.layout.cert(file), cert.public_bytes(serialization.Encoding.PEM), 0o644)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(self.layout.key(file), pem)

    def ca(self, file: str, cn: str) -> None:
        import datetime as dt

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(self._usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        self._save(file, cert, key)

    def leaf(
        self,
        issuer: str,
        file: str,
        cn: str,
        orgs: tuple[str, ...] = (),
        *,
        server: bool = False,
        client: bool = False,
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
    ) -> None:
        """A cert signed by CA ``issuer``; a serving cert is valid for localhost and
        127.0.0.1 plus ``dns``/``ips``."""
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        issuer_name = x509.load_pem_x509_certificate(self.layout.cert(issuer).read_bytes()).subject
        issuer_key = serialization.load_pem_private_key(
            self.layout.key(issuer).read_bytes(), password=None
        )
        assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now)
            .not_valid_after(self.now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(self._usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        )
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in ("localhost", *dns)]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ("127.0.0.1", *ips)]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        self._save(file, builder.sign(issuer_key, hashes.SHA256()), key)


def make_pki(layout: Layout) -> None:
    """Both CAs, the certs they sign (see Pki), and the service-account key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pki = Pki(layout)
    pki.ca("ca", f"{CLUSTER_NAME}-ca")
    pki.ca("front-proxy-ca", f"{CLUSTER_NAME}-front-proxy-ca")
    pki.leaf(
        "ca",
        "kube-apiserver",
        "kube-apiserver",
        server=True,
        dns=(
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ips=("10.96.0.1",),  # the `kubernetes` Service IP in SERVICE_CIDR
    )
    pki.leaf("ca", "apiserver-kubelet-client", "kube-apiserver-kubelet-client", client=True)
    pki.leaf("front-proxy-ca", "front-proxy-client", "front-proxy-client", client=True)
    # system:kube-controller-manager / system:kube-scheduler are bound by the
    # bootstrap RBAC policy; the same certs serve their /healthz ports.
    pki.leaf(
        "ca", "kube-controller-manager", "system:kube-controller-manager", server=True, client=True
    )
    pki.leaf("ca", "kube-scheduler", "system:kube-scheduler", server=True, client=True)
    # kwok: its identity towards the apiserver (it patches every node and pod) and the
    # kubelet serving cert the apiserver verifies (--kubelet-certificate-authority).
    pki.leaf("ca", "kwok", "kwok-controller", ("system:masters",), server=True, client=True)
    pki.leaf("ca", CERT_USER, CERT_USER, client=True)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(
        layout.key("service-account"),
        sa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(
        layout.pki / "service-account.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        0o644,
    )


# --------------------------------------------------------------------------- config files


def q(value: str) -> str:
    """A YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def kubeconfig_text(
    server: str,
    ca_pem: bytes,
    users: dict[str, dict[str, str]],
    contexts: dict[str, tuple[str, str]],
    current: str,
) -> str:
    ca_data = base64.b64encode(ca_pem).decode()
    lines = [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        f"- name: {CLUSTER_NAME}",
        "  cluster:",
        f"    server: {q(server)}",
        f"    certificate-authority-data: {ca_data}",
        "users:",
    ]
    for user, fields in users.items():
        lines += [f"- name: {q(user)}", "  user:"]
        lines += [f"    {k}: {q(v)}" for k, v in fields.items()]
    lines.append("contexts:")
    for ctx, (user, namespace) in contexts.items():
        lines += [
            f"- name: {q(ctx)}",
            "  context:",
            f"    cluster: {CLUSTER_NAME}",
            f"    user: {q(user)}",
            f"    namespace: {q(namespace)}",
        ]
    lines += [f"current-context: {q(current)}", "preferences: {}", ""]
    return "\n".join(lines)


# context -> (user, namespace) in each cluster's kubeconfig
CONTEXTS = {
    "admin": ("admin", "default"),
    "alice": ("alice", "research"),
    "bob": ("bob", "research"),
    "carol-cert": ("carol-cert", "research"),
    VIEWER: (VIEWER, "research"),
}


def write_configs(layout: Layout, server: str, ports: dict[str, int]) -> dict[str, str]:
    """Tokens, kubeconfigs, scheduler and kwok config. Returns user -> token."""
    tokens = {user: secrets.token_urlsafe(32) for user in TOKEN_USERS}
    for user, token in tokens.items():
        write_private(layout.token_file(user), token + "\n")
    csv = "".join(
        f'{tokens[u]},{u},ant-{u},"{",".join(groups)}"\n' for u, groups in TOKEN_USERS.items()
    )
    write_private(layout.tokens / "tokens.csv", csv)

    ca_pem = layout.cert("ca").read_bytes()
    users: dict[str, dict[str, str]] = {u: {"token": tokens[u]} for u in TOKEN_USERS}
    users["carol-cert"] = {
        "client-certificate": str(layout.cert(CERT_USER)),
        "client-key": str(layout.key(CERT_USER)),
    }
    write_private(layout.kubeconfig, kubeconfig_text(server, ca_pem, users, CONTEXTS, "admin"))

    for component, cert in (
        ("kube-controller-manager", "kube-controller-manager"),
        ("kube-scheduler", "kube-scheduler"),
        ("kwok", "kwok"),
    ):
        text = kubeconfig_text(
            server,
            ca_pem,
            {
                component: {
                    "client-certificate": str(layout.cert(cert)),
                    "client-key": str(layout.key(cert)),
                }
            },
            {component: (component, "default")},
            component,
        )
        write_private(layout.component_kubeconfig(component), text)

    scheduler = "\n".join(
        [
            "apiVersion: kubescheduler.config.k8s.io/v1",
            "kind: KubeSchedulerConfiguration",
            "clientConnection:",
            f"  kubeconfig: {q(str(layout.component_kubeconfig('kube-scheduler')))}",
            "  qps: 1000",
            "  burst: 2000",
            "leaderElection:",
            "  leaderElect: false",
            "",
        ]
    )
    write_private(layout.config / "kube-scheduler.yaml", scheduler)

    logs_file = layout.config / "training.log"
    shutil.copyfile(CONFIG_TEMPLATES / "training.log", logs_file)
    shutil.copyfile(CONFIG_TEMPLATES / "kwok-stages.yaml", layout.config / "kwok-stages.yaml")
    logs = (CONFIG_TEMPLATES / "kwok-logs.yaml").read_text().replace("@LOGS_FILE@", str(logs_file))
    write_private(layout.config / "kwok-logs.yaml", logs, 0o644)
    shutil.copyfile(CONFIG_TEMPLATES / "kwok-exec.yaml", layout.config / "kwok-exec.yaml")
    return tokens


def component_argv(
    component: str, layout: Layout, bin_dir: Path, ports: dict[str, int]
) -> list[str]:
    pki, cfg = layout.pki, layout.config
    exe = str(bin_dir / component)
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    if component == "etcd":
        return [
            exe,
            f"--name={CLUSTER_NAME}",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={CLUSTER_NAME}={peer_url}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={CLUSTER_NAME}",
            # Throwaway data: skipping fsync makes every write (and startup) much faster.
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        ]
    if component == "kube-apiserver":
        return [
            exe,
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['kube-apiserver']}",
            f"--tls-cert-file={layout.cert('kube-apiserver')}",
            f"--tls-private-key-file={layout.key('kube-apiserver')}",
            f"--client-ca-file={layout.cert('ca')}",
            f"--token-auth-file={layout.tokens / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-signing-key-file={layout.key('service-account')}",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--kubelet-client-certificate={layout.cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={layout.key('apiserver-kubelet-client')}",
            f"--kubelet-certificate-authority={layout.cert('ca')}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            # Aggregation layer / front proxy, as kubeadm sets it up (also keeps the
            # controller-manager and scheduler from complaining about a missing CA).
            f"--requestheader-client-ca-file={layout.cert('front-proxy-ca')}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={layout.cert('front-proxy-client')}",
            f"--proxy-client-key-file={layout.key('front-proxy-client')}",
            "--allow-privileged=true",
            # 127.0.0.1 is not a valid Endpoints address: don't publish the
            # `kubernetes` Service's endpoints (nothing in this cluster needs them).
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            f"--feature-gates={FEATURE_GATES}",
            f"--runtime-config={RUNTIME_CONFIG}",
        ]
    if component == "kube-controller-manager":
        kubeconfig = layout.component_kubeconfig(component)
        return [
            exe,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[component]}",
            f"--tls-cert-file={layout.cert(component)}",
            f"--tls-private-key-file={layout.key(component)}",
            f"--client-ca-file={layout.cert('ca')}",
            f"--root-ca-file={layout.cert('ca')}",
            f"--service-account-private-key-file={layout.key('service-account')}",
            f"--cluster-signing-cert-file={layout.cert('ca')}",
            f"--cluster-signing-key-file={layout.key('ca')}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
            "--profiling=false",
            f"--feature-gates={FEATURE_GATES}",
        ]
    if component == "kube-scheduler":
        kubeconfig = layout.component_kubeconfig(component)
        return [
            exe,
            f"--config={cfg / 'kube-scheduler.yaml'}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports[component]}",
            f"--tls-cert-file={layout.cert(component)}",
            f"--tls-private-key-file={layout.key(component)}",
            f"--feature-gates={FEATURE_GATES}",
        ]
    if component == "kwok":
        annotation = "=".join(KWOK_NODE_ANNOTATION)
        return [
            exe,
            f"--kubeconfig={layout.component_kubeconfig('kwok')}",
            f"--config={cfg / 'kwok-stages.yaml'}",
            f"--config={cfg / 'kwok-logs.yaml'}",
            f"--config={cfg / 'kwok-exec.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={annotation}",
            # The kubelet endpoint every fake node advertises (InternalIP + daemonEndpoints).
            "--node-ip=127.0.0.1",
            f"--node-port={ports['kwok']}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--tls-cert-file={layout.cert('kwok')}",
            f"--tls-private-key-file={layout.key('kwok')}",
            "--cidr=10.64.0.0/10",
            "--node-lease-duration-seconds=40",
        ]
    raise ValueError(component)


# --------------------------------------------------------------------------- objects


def researcher_rules() -> list[dict[str, Any]]:
    crud = ["create", "get", "list", "watch", "update", "patch", "delete"]
    read = ["get", "list", "watch"]
    return [
        {"apiGroups": ["apps"], "resources": ["statefulsets", "statefulsets/scale"], "verbs": crud},
        {"apiGroups": ["apps"], "resources": ["controllerrevisions"], "verbs": read},
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": crud},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": read},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": read},
        # Native gang scheduling: a job's PodGroup is created with its StatefulSet.
        {
            "apiGroups": ["scheduling.k8s.io"],
            "resources": ["podgroups", "workloads"],
            "verbs": crud,
        },
    ]


def researcher_clusterwide_rules() -> list[dict[str, Any]]:
    read = ["get", "list", "watch"]
    return [
        {"apiGroups": [""], "resources": ["nodes", "namespaces"], "verbs": read},
        {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": read},
    ]


def viewer_rules() -> list[dict[str, Any]]:
    """What `ant list/show/queue/logs` read in a namespace, and nothing that writes."""
    read = ["get", "list", "watch"]
    return [
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets", "controllerrevisions"],
            "verbs": read,
        },
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": read},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": read},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": read},
        {
            "apiGroups": ["scheduling.k8s.io"],
            "resources": ["podgroups", "workloads"],
            "verbs": read,
        },
    ]


def role_binding(
    namespace: str,
    name: str,
    subjects: list[dict[str, str]],
    clusterrole: str = RESEARCHER_CLUSTERROLE,
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": clusterrole,
        },
        "subjects": subjects,
    }


def clusterrole(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }


def subject(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


# The researcher binding the namespaces `research` (and test namespaces) get.
RESEARCH_SUBJECTS = [subject("Group", RESEARCHERS_GROUP), subject("User", CERT_USER)]


def node_manifest(i: int) -> dict[str, Any]:
    name = f"{NODE_PREFIX}{i}"
    resources = {
        "cpu": "64",
        "memory": "512Gi",
        "pods": "110",
        "ephemeral-storage": "1Ti",
        "google.com/tpu": str(NODE_TPUS),
    }
    pod_cidr = f"10.{64 + (i >> 8)}.{i & 255}.0/24"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "ct5p-hightpu-4t",
                "cloud.google.com/gke-nodepool": "tpu-v5p-pool",
                "cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice",
                "cloud.google.com/gke-tpu-topology": "2x2x2",
                "type": "kwok",
            },
            "annotations": {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1]},
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        # Nodes may set status on create (as kubelets do); kwok keeps capacity/allocatable.
        "status": {"capacity": resources, "allocatable": resources},
    }


def apply_objects(api: Api, node_count: int) -> None:
    for ns in NAMESPACES:
        api.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    for name, rules in (
        (RESEARCHER_CLUSTERROLE, researcher_rules()),
        (RESEARCHER_CLUSTERWIDE_CLUSTERROLE, researcher_clusterwide_rules()),
        (VIEWER_CLUSTERROLE, viewer_rules()),
    ):
        api.create(f"{rbac}/clusterroles", clusterrole(name, rules))
    api.create(
        f"{rbac}/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": RESEARCHER_CLUSTERWIDE_CLUSTERROLE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": RESEARCHER_CLUSTERWIDE_CLUSTERROLE,
            },
            # The viewer reads nodes and PriorityClasses too: `ant queue` shows capacity.
            "subjects": [subject("Group", RESEARCHERS_GROUP), subject("User", VIEWER)],
        },
    )
    for ns in RESEARCHER_NAMESPACES:
        api.create(
            f"{rbac}/namespaces/{ns}/rolebindings",
            role_binding(ns, "researchers", RESEARCH_SUBJECTS),
        )
    api.create(
        f"{rbac}/namespaces/research/rolebindings",
        role_binding("research", VIEWER, [subject("User", VIEWER)], VIEWER_CLUSTERROLE),
    )
    api.create(
        f"{rbac}/namespaces/bob-private/rolebindings",
        role_binding("bob-private", "bob", [subject("User", "bob")]),
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for fut in [
            pool.submit(api.create, "/api/v1/nodes", node_manifest(i)) for i in range(node_count)
        ]:
            fut.result()


# --------------------------------------------------------------------------- up


class StartError(Exception):
    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


@dataclass
class Starter:
    layout: Layout
    bin_dir: Path
    ports: dict[str, int]
    deadline: float
    started: dict[str, int]

    def start(self, component: str) -> None:
        argv = component_argv(component, self.layout, self.bin_dir, self.ports)
        self.started[component] = spawn(self.layout, component, argv)

    def check_alive(self) -> None:
        for component, pid in self.started.items():
            code = exit_status(pid)
            if code is not None:
                raise StartError(component, f"{component} exited with status {code}")

    def wait(self, component: str, what: str, probe: Callable[[], str | None]) -> None:
        """Poll `probe` (None = done, else a reason) until it passes or the deadline hits."""
        reason = "not started"
        delay = 0.05
        while True:
            self.check_alive()
            try:
                result = probe()
            except OSError as err:  # connection refused, TLS not up yet, timeouts
                result = f"{type(err).__name__}: {err}"
            if result is None:
                return
            reason = result
            if time.monotonic() > self.deadline:
                raise StartError(component, f"timed out waiting for {what} (last: {reason})")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def resolve_bin_dir() -> Path:
    override = os.environ.get("ANT_DEVCLUSTER_BIN")
    if override:
        bin_dir = Path(override).expanduser()
    else:
        proc = subprocess.run(
            [str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.returncode != 0 or not lines:
            raise StartError("build", f"devcluster/build.sh failed (exit {proc.returncode})")
        bin_dir = Path(lines[-1])
    missing = [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise StartError("build", f"missing binaries in {bin_dir}: {', '.join(missing)}")
    return bin_dir


def ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections (Linux; else none known)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return range(0)
    return range(int(low), int(high) + 1)


def check_ports(ports: dict[str, int]) -> None:
    ephemeral = ephemeral_ports()
    for name, port in ports.items():
        # Any outgoing connection may take such a port first: the cluster would fail to
        # start now and then, at random (seen with a base of 36443).
        if port in ephemeral:
            raise StartError(
                name,
                f"127.0.0.1:{port} ({name}) is in the kernel's range for outgoing connections "
                f"({ephemeral.start}-{ephemeral.stop - 1}), which may take it first; pick a "
                f"lower ANT_DEVCLUSTER_PORT_BASE (the default is {DEFAULT_PORT_BASE}) or "
                f"{port_env_var(name)}",
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as err:
                raise StartError(
                    name,
                    f"127.0.0.1:{port} ({name}) is in use by another process ({err.strerror}); "
                    f"pick other ports with ANT_DEVCLUSTER_PORT_BASE or {port_env_var(name)}",
                ) from None


def healthy(layout: Layout, patience: float = 60.0) -> bool:
    """Every component of the recorded cluster runs and the apiserver is ready.

    A cluster whose processes all run is only slow (a loaded machine, a restart in
    progress): wait up to ``patience`` seconds for /readyz rather than replace it
    and delete its state.
    """
    info = read_cluster_json(layout)
    if not info:
        return False
    pids = recorded_pids(layout)
    if not all(c in pids and is_ours(pids[c], layout) for c in COMPONENTS):
        return False
    deadline = time.monotonic() + patience
    while True:
        try:
            token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
            status, _ = http("GET", info["server"] + "/readyz", ca=Path(info["ca"]), token=token)
            if status == 200:
                return True
        except (OSError, KeyError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def node_problems(api: Api, count: int) -> str | None:
    status, body = api.call("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")
    if status != 200:
        return f"listing nodes: HTTP {status}"
    nodes = {n["metadata"]["name"]: n for n in body["items"]}
    problems = []
    for i in range(count):
        node = nodes.get(f"{NODE_PREFIX}{i}")
        if node is None:
            problems.append(f"{NODE_PREFIX}{i} missing")
            continue
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        if conds.get("Ready") != "True":
            problems.append(f"{NODE_PREFIX}{i} not Ready")
        elif node["spec"].get("taints"):
            keys = ",".join(t["key"] for t in node["spec"]["taints"])
            problems.append(f"{NODE_PREFIX}{i} tainted ({keys})")
    return "; ".join(problems[:3]) or None


def start_cluster(layout: Layout, bin_dir: Path, ports: dict[str, int], node_count: int) -> None:
    t0 = time.monotonic()
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    for d in (layout.state, layout.pki, layout.tokens, layout.config, layout.logs, layout.run):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.state.chmod(0o700)
    write_private(layout.run / "ports.json", json.dumps(ports) + "\n", 0o644)
    make_pki(layout)
    tokens = write_configs(layout, server, ports)
    ca = layout.cert("ca")
    api = Api(server, ca, tokens["admin"])
    starter = Starter(layout, bin_dir, ports, time.monotonic() + START_TIMEOUT, {})
    try:
        starter.start("etcd")
        starter.wait(
            "etcd",
            "etcd /health",
            lambda: (
                None
                if b'"true"'
                in http("GET", f"http://127.0.0.1:{ports['etcd']}/health", timeout=2)[1]
                else "unhealthy"
            ),
        )
        starter.start("kube-apiserver")

        def readyz() -> str | None:
            status, body = http("GET", server + "/readyz", ca=ca, token=tokens["admin"])
            if status == 200:
                return None
            return f"HTTP {status}: {body[-300:].decode(errors='replace')}"

        starter.wait("kube-apiserver", "kube-apiserver /readyz", readyz)
        t_api = time.monotonic()
        # These retry until the apiserver answers, which it now does.
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            starter.start(component)
        try:
            apply_objects(api, node_count)
        except (RuntimeError, OSError) as err:
            raise StartError("kube-apiserver", f"applying namespaces/RBAC/nodes: {err}") from err
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            url = f"https://127.0.0.1:{ports[component]}/healthz"
            starter.wait(
                component,
                f"{component} /healthz",
                lambda url=url: None if http("GET", url, ca=ca)[0] == 200 else "not healthy",
            )
        starter.wait(
            "kwok",
            f"{node_count} Ready, untainted kwok nodes",
            lambda: node_problems(api, node_count),
        )

        def default_sas() -> str | None:
            for ns in ("default", *NAMESPACES):
                status, _ = api.call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")
                if status != 200:
                    return f"no default ServiceAccount in {ns} yet"
            return None

        starter.wait("kube-controller-manager", "default ServiceAccounts", default_sas)
    except BaseException:
        # Leave nothing running; keep the state dir so the logs can be read.
        stop_all(layout)
        raise

    info = {
        "name": CLUSTER_NAME,
        "server": server,
        "ca": str(ca),
        "kubeconfig": str(layout.kubeconfig),
        "contexts": list(CONTEXTS),
        "state_dir": str(layout.state),
        "bin_dir": str(bin_dir),
        "kubectl": str(bin_dir / "kubectl"),
        "ports": ports,
        "users": {
            **{
                u: {"token_file": str(layout.token_file(u)), "groups": g}
                for u, g in TOKEN_USERS.items()
            },
            CERT_USER: {
                "client_certificate": str(layout.cert(CERT_USER)),
                "client_key": str(layout.key(CERT_USER)),
                "groups": [],
            },
        },
        "namespaces": list(NAMESPACES),
        # Bind RESEARCHER_CLUSTERROLE to these subjects in a namespace (RoleBinding)
        # to give it the same researcher rights as `research`.
        "researcher_clusterrole": RESEARCHER_CLUSTERROLE,
        "researcher_subjects": RESEARCH_SUBJECTS,
        "nodes": {
            "count": node_count,
            "prefix": NODE_PREFIX,
            "tpus_per_node": NODE_TPUS,
            "annotation": "=".join(KWOK_NODE_ANNOTATION),
        },
        "components": {
            c: {"pid": starter.started[c], "log": str(layout.log_file(c))} for c in COMPONENTS
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "startup_seconds": round(time.monotonic() - t0, 2),
        "revision": REVISION,
    }
    write_cluster_json(layout, info)
    log(
        f"up in {time.monotonic() - t0:.1f}s (apiserver ready after {t_api - t0:.1f}s); "
        f"{node_count} nodes; state in {layout.state}"
    )


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + ln for ln in text[-lines:])


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through start_cluster, which stops what it started


def ensure_cluster(layout: Layout) -> None:
    """Reuse a healthy cluster of this or a newer REVISION, else start a fresh one."""
    running = (read_cluster_json(layout) or {}).get("revision", 0)
    if healthy(layout):
        if running >= REVISION:
            return
        log(f"the running cluster is of revision {running}; replacing it with {REVISION}")
    elif layout.state.exists():
        log(f"found a stopped or broken cluster in {layout.state}; starting a fresh one")
    if layout.state.exists():
        stop_all(layout)
        shutil.rmtree(layout.state)
    node_count = int(os.environ.get("ANT_DEVCLUSTER_NODES", "8"))
    bin_dir = resolve_bin_dir()
    ports = resolve_ports()
    check_ports(ports)
    start_cluster(layout, bin_dir, ports, node_count)


def ensure_kueue(layout: Layout) -> None:
    import kueue_component

    try:
        kueue_component.start(layout)
    except BaseException:
        # Leave the cluster as it was: no webhooks pointing at a manager that is not there.
        kueue_component.unregister(layout)
        pid = recorded_pids(layout).get("kueue")
        if pid is not None:
            stop_pids([pid], layout)
        raise


def cmd_up(layout: Layout, kueue: bool = False, announce: bool = True) -> int:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        log("`up` needs the `cryptography` package: run `make cluster-up` (uses .venv)")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    with locked(layout):
        try:
            ensure_cluster(layout)
            if kueue:
                ensure_kueue(layout)
            import controller_component

            controller_component.start(layout)
        except StartError as err:
            log(f"failed to start {err.component}: {err}")
            log_path = layout.log_file(err.component)
            if log_path.exists():
                log(f"log file: {log_path}\n  last lines:\n{tail(log_path)}")
            if layout.logs.exists():
                log(f"all logs: {layout.logs}; `make cluster-down` removes them")
            return 1
        except KeyboardInterrupt:
            log("interrupted; stopped what had started")
            return 130
    if announce:
        print(layout.kubeconfig)
    return 0


# --------------------------------------------------------------------------- side by side


def sibling_layouts(layout: Layout) -> list[Layout]:
    """The state dirs of the clusters started next to this one (`up --count`), by number."""
    found = []
    for i in range(2, MAX_CLUSTERS + 1):
        sibling = layout.state.with_name(f"{layout.state.name}-{i}")
        if sibling.exists():
            found.append(Layout(sibling))
    return found


def sibling_env(layout: Layout, i: int) -> dict[str, str]:
    """The environment that makes `cluster.py up` start cluster ``i`` (2..N)."""
    base = int(os.environ.get("ANT_DEVCLUSTER_PORT_BASE", DEFAULT_PORT_BASE))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    env["ANT_DEVCLUSTER_STATE"] = str(layout.state.with_name(f"{layout.state.name}-{i}"))
    env["ANT_DEVCLUSTER_PORT_BASE"] = str(base + CLUSTER_PORT_STRIDE * (i - 1))
    return env


def clusters_kubeconfig(layout: Layout) -> Path:
    return layout.state / "clusters.kubeconfig"


def write_clusters_kubeconfig(layouts: list[Layout]) -> Path:
    """One kubeconfig for clusters dev-1..dev-N: context, user and cluster USER@dev-I."""
    lines = ["apiVersion: v1", "kind: Config", "clusters:"]
    users, contexts = ["users:"], ["contexts:"]
    for i, layout in enumerate(layouts, start=1):
        info = read_cluster_json(layout) or {}
        name = f"dev-{i}"
        ca_data = base64.b64encode(layout.cert("ca").read_bytes()).decode()
        lines += [
            f"- name: {name}",
            "  cluster:",
            f"    server: {q(info['server'])}",
            f"    certificate-authority-data: {ca_data}",
        ]
        for context, (user, namespace) in CONTEXTS.items():
            if user == "carol-cert":
                fields = {
                    "client-certificate": str(layout.cert(CERT_USER)),
                    "client-key": str(layout.key(CERT_USER)),
                }
            else:
                fields = {"token": layout.token_file(user).read_text().strip()}
            users += [f"- name: {q(f'{user}@{name}')}", "  user:"]
            users += [f"    {k}: {q(v)}" for k, v in fields.items()]
            contexts += [
                f"- name: {q(f'{context}@{name}')}",
                "  context:",
                f"    cluster: {name}",
                f"    user: {q(f'{user}@{name}')}",
                f"    namespace: {q(namespace)}",
            ]
    text = "\n".join([*lines, *users, *contexts, 'current-context: "alice@dev-1"', ""])
    path = clusters_kubeconfig(layouts[0])
    write_private(path, text)
    return path


def cmd_up_many(layout: Layout, count: int, kueue: bool) -> int:
    """Cluster 1 as `up` starts it, clusters 2..count beside it, one after the other
    (each start takes most of the machine for a few seconds)."""
    status = cmd_up(layout, kueue=kueue, announce=False)
    for i in range(2, count + 1):
        if status != 0:
            return status
        argv = [sys.executable, str(Path(__file__).resolve()), "up", *(["--kueue"] * kueue)]
        status = subprocess.run(
            argv, env=sibling_env(layout, i), stdout=subprocess.DEVNULL, check=False
        ).returncode
    if status != 0:
        return status
    layouts = [
        layout,
        *(
            Layout(Path(sibling_env(layout, i)["ANT_DEVCLUSTER_STATE"]))
            for i in range(2, count + 1)
        ),
    ]
    with locked(layout):
        print(write_clusters_kubeconfig(layouts))
    return 0


# --------------------------------------------------------------------------- down/status/env


def cmd_down(layout: Layout) -> int:
    for sibling in sibling_layouts(layout):
        cmd_down(sibling)
    with locked(layout):
        stopped = stop_all(layout)
        existed = layout.state.exists()
        if existed:
            shutil.rmtree(layout.state)
    log(
        f"stopped {stopped} process(es)"
        + (f"; removed {layout.state}" if existed else "; no state to remove")
    )
    return 0


def cmd_status(layout: Layout) -> int:
    info = read_cluster_json(layout)
    pids = recorded_pids(layout)
    if not layout.state.exists():
        print(f"dev cluster: not running (no state in {layout.state})")
        return 3
    ports = (info or {}).get("ports")
    if ports is None:
        try:
            ports = json.loads((layout.run / "ports.json").read_text())
        except (OSError, ValueError):
            ports = {}
    print(f"dev cluster: {'configured' if info else 'incomplete (no cluster.json)'}")
    print(f"  state dir:  {layout.state}")
    if info:
        print(f"  server:     {info['server']}")
        print(f"  kubeconfig: {info['kubeconfig']}")
    all_up = True
    optional = [c for c in (*OPTIONAL_COMPONENTS, *ADDONS) if c in pids]
    for component in (*COMPONENTS, *optional):
        pid = pids.get(component)
        running = pid is not None and is_ours(pid, layout)
        all_up &= running
        state = "running" if running else ("stopped" if pid else "never started")
        port = ports.get(component)
        print(
            f"  {component:<24} {state:<13} pid {pid or '-':<8} "
            f"port {port or '-':<6} log {layout.log_file(component)}"
        )
    if info and all_up:
        try:
            token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
            status, _ = http("GET", info["server"] + "/readyz", ca=Path(info["ca"]), token=token)
            api = "ready" if status == 200 else f"HTTP {status}"
            code, nodes = http(
                "GET",
                info["server"] + "/api/v1/nodes?labelSelector=type%3Dkwok",
                ca=Path(info["ca"]),
                token=token,
            )
            if code == 200:
                items = json.loads(nodes)["items"]
                ready = sum(
                    1
                    for n in items
                    for c in n.get("status", {}).get("conditions", [])
                    if c["type"] == "Ready" and c["status"] == "True"
                )
                api += f"; {ready}/{len(items)} kwok nodes Ready"
        except (OSError, ValueError, KeyError) as err:
            api = f"unreachable ({err})"
        print(f"  apiserver:  {api}")
        return 0 if api.startswith("ready") else 1
    return 1


def compact_etcd(port: int) -> int:
    """Write a marker key, then compact etcd at that write's revision: every
    resourceVersion a client holds is older, so resuming from it is 410 Gone."""
    import base64
    import json
    import urllib.request

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer: dict[str, Any] = json.loads(reply.read())
            return answer

    key = base64.b64encode(b"/ant-devcluster/compaction-marker").decode()
    value = base64.b64encode(str(time.time()).encode()).decode()
    revision = int(post("/v3/kv/put", {"key": key, "value": value})["header"]["revision"])
    post("/v3/kv/compaction", {"revision": revision})
    return revision


def cmd_compact_etcd(layout: Layout) -> int:
    """Compact the running cluster's etcd now (``compact_etcd``)."""
    info = read_cluster_json(layout)
    if not info:
        log("the dev cluster is not up; run `make cluster-up`")
        return 3
    log(f"etcd compacted at revision {compact_etcd(info['ports']['etcd'])}")
    return 0


def cmd_restart_apiserver(layout: Layout, down_seconds: float = 0.0, compact: bool = False) -> int:
    """Kill the running apiserver, wait (``compact``: compact etcd meanwhile, so every
    watch resumed after the restart gets 410), start it again with the same flags and
    data."""
    with locked(layout):
        info = read_cluster_json(layout)
        if not info:
            log("the dev cluster is not up; run `make cluster-up`")
            return 3
        pid = recorded_pids(layout).get("kube-apiserver")
        if pid is not None and is_ours(pid, layout):
            stop_pids([pid], layout, timeout=0.0)  # SIGTERM then SIGKILL at once: a crash
        time.sleep(max(0.0, down_seconds))
        bin_dir, ports = Path(info["bin_dir"]), info["ports"]
        if compact:
            log(f"etcd compacted at revision {compact_etcd(ports['etcd'])}")
        server, ca = info["server"], Path(info["ca"])
        token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
        starter = Starter(layout, bin_dir, ports, time.monotonic() + START_TIMEOUT, {})
        try:
            deadline = time.monotonic() + 15
            while True:  # the killed process's listening socket may take a moment to go
                try:
                    check_ports({"kube-apiserver": ports["kube-apiserver"]})
                    break
                except StartError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            starter.start("kube-apiserver")

            def readyz() -> str | None:
                status, body = http("GET", server + "/readyz", ca=ca, token=token)
                return None if status == 200 else f"HTTP {status}: {body[-300:]!r}"

            starter.wait("kube-apiserver", "kube-apiserver /readyz", readyz)
        except StartError as err:
            log(f"failed to restart kube-apiserver: {err}")
            log_path = layout.log_file("kube-apiserver")
            log(f"log file: {log_path}\n  last lines:\n{tail(log_path)}")
            return 1
        info["components"]["kube-apiserver"]["pid"] = starter.started["kube-apiserver"]
        write_cluster_json(layout, info)
    log(f"kube-apiserver restarted (pid {starter.started['kube-apiserver']})")
    return 0


def cmd_env(layout: Layout) -> int:
    if not layout.cluster_json.exists():
        log("the dev cluster is not up; run `make cluster-up`")
        return 1
    print(f"export KUBECONFIG={layout.kubeconfig}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command", choices=["up", "down", "status", "env", "restart-apiserver", "compact-etcd"]
    )
    parser.add_argument(
        "--kueue",
        action="store_true",
        help="up: also start Kueue (built on first use; see docs/development.md)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=1,
        help=f"up: start this many clusters side by side (1..{MAX_CLUSTERS})",
    )
    parser.add_argument(
        "--down-seconds",
        type=float,
        default=0.0,
        help="restart-apiserver: how long the apiserver stays down",
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="restart-apiserver: compact etcd while the apiserver is down",
    )
    args = parser.parse_args(argv)
    layout = Layout(default_state_dir())
    if args.command == "restart-apiserver":
        return cmd_restart_apiserver(layout, args.down_seconds, args.compact)
    if args.command == "up":
        if not 1 <= args.count <= MAX_CLUSTERS:
            parser.error(f"--count must be between 1 and {MAX_CLUSTERS}")
        if args.count > 1:
            return cmd_up_many(layout, args.count, args.kueue)
        return cmd_up(layout, kueue=args.kueue)
    commands = {
        "down": cmd_down,
        "status": cmd_status,
        "env": cmd_env,
        "compact-etcd": cmd_compact_etcd,
    }
    return commands[args.command](layout)


if __name__ == "__main__":
    # kueue_component and controller_component import `cluster`: let them find this
    # module, not load a second copy.
    sys.modules.setdefault("cluster", sys.modules["__main__"])
    sys.exit(main())
