"""Reading kubeconfig: merging, relative paths, in-cluster, and clear errors."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import yaml

from ant.errors import ConfigError, ExitCode
from ant.kube import auth, config
from tests.unit.scripted_server import respond, scripted_server


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(
    context: str, server: str, user: dict, *, current: str | None = None, ns: str = ""
) -> dict:
    ctx = {"cluster": f"{context}-cluster", "user": f"{context}-user"}
    if ns:
        ctx["namespace"] = ns
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current if current is not None else context,
        "contexts": [{"name": context, "context": ctx}],
        "clusters": [{"name": f"{context}-cluster", "cluster": {"server": server}}],
        "users": [{"name": f"{context}-user", "user": user}],
    }


def test_kubeconfig_list_first_file_wins_for_names_and_current_context(tmp_path):
    a = write(tmp_path / "a", kubeconfig("one", "https://a:6443", {"token": "ta"}, ns="research"))
    b_doc = kubeconfig("one", "https://b:6443", {"token": "tb"}, current="two")
    b_doc["contexts"].append({"name": "two", "context": {"cluster": "one-cluster", "user": "x"}})
    b = write(tmp_path / "b", b_doc)
    kc = config.load(env={"KUBECONFIG": f"{a}:{b}"})
    assert kc.context == "one"
    assert kc.cluster.server == "https://a:6443"
    assert kc.namespace == "research"
    # A context only the second file defines is still found, with the first file's cluster.
    two = config.load(context="two", env={"KUBECONFIG": f"{a}:{b}"})
    assert two.cluster.server == "https://a:6443"
    assert two.namespace == "default"


def test_contexts_resolved_from_files_read_once(tmp_path):
    doc = kubeconfig("one", "https://a:6443", {"token": "ta"}, ns="research")
    doc["contexts"].append({"name": "two", "context": {"cluster": "one-cluster", "user": "x"}})
    path = write(tmp_path / "config", doc)
    files = config.read_files(str(path), {})
    assert config.context_names(files) == ["one", "two"]
    path.unlink()  # resolved from what was read
    one, two = (config.load(str(path), c, {}, files=files) for c in ("one", "two"))
    assert (one.context, one.namespace, two.context, two.namespace) == (
        "one",
        "research",
        "two",
        "default",
    )
    assert one.source == two.source == str(path)
    with pytest.raises(ConfigError, match="is not a readable file"):
        config.read_files(str(path), {})


def test_relative_paths_are_relative_to_the_kubeconfig_file(tmp_path):
    (tmp_path / "certs").mkdir()
    doc = kubeconfig("c", "https://x", {"client-certificate": "certs/c.crt", "client-key": "k"})
    doc["clusters"][0]["cluster"]["certificate-authority"] = "certs/ca.crt"
    path = write(tmp_path / "config", doc)
    kc = config.load(str(path))
    assert kc.cluster.ca_file == str(tmp_path / "certs" / "ca.crt")
    assert kc.user.client_cert_file == str(tmp_path / "certs" / "c.crt")
    assert kc.user.client_key_file == str(tmp_path / "k")


def test_inline_certificate_data_is_written_to_private_files(tmp_path):
    pem = b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n"
    doc = kubeconfig(
        "c",
        "https://x",
        {
            "client-certificate-data": base64.b64encode(pem).decode(),
            "client-key-data": base64.b64encode(b"key").decode(),
        },
    )
    kc = config.load(str(write(tmp_path / "config", doc)))
    cert, key = auth.for_kubeconfig(kc).client_cert() or ("", "")
    assert Path(cert).read_bytes() == pem
    assert Path(key).read_bytes() == b"key"
    assert Path(key).stat().st_mode & 0o077 == 0, "key material must not be readable by others"


@pytest.mark.parametrize(
    ("doc", "context", "message"),
    [
        (kubeconfig("a", "https://x", {}, current=""), None, "has no current-context"),
        (kubeconfig("a", "https://x", {}), "b", "context 'b' not found in kubeconfig (known: a)"),
        (kubeconfig("a", "", {}), None, "its cluster has no server URL"),
        (kubeconfig("a", "https://x", {"username": "u", "password": "p"}), None, "basic auth"),
        (kubeconfig("a", "https://x", {"client-key": "k"}), None, "needs both cert and key"),
        (kubeconfig("a", "https://x", {"token-data": 1, "exec": {"args": []}}), None, "no command"),
    ],
)
def test_bad_kubeconfig_is_one_clear_config_error(tmp_path, doc, context, message):
    path = write(tmp_path / "config", doc)
    with pytest.raises(ConfigError) as e:
        auth.for_kubeconfig(config.load(str(path), context))
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert e.value.exit_code is ExitCode.USAGE


def test_unparseable_kubeconfig_names_the_file(tmp_path):
    path = tmp_path / "config"
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(ConfigError, match=f"cannot read kubeconfig {path}"):
        config.load(str(path))


def test_no_kubeconfig_anywhere_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match=r"no kubeconfig found .*/\.kube/config"):
        config.load(env={"HOME": str(tmp_path)})


def test_in_cluster_service_account(tmp_path):
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "namespace").write_text("jobs")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    kc = config.in_cluster(env, sa_dir=tmp_path)
    assert kc.cluster.server == "https://10.0.0.1:443"
    assert kc.cluster.ca_file == str(tmp_path / "ca.crt")
    assert kc.namespace == "jobs"
    assert auth.for_kubeconfig(kc).headers() == {"Authorization": "Bearer sa-token"}


def test_a_rotated_token_file_is_reread(tmp_path):
    token = tmp_path / "token"
    token.write_text("one")
    a = auth.TokenFileAuth(str(token))
    assert a.headers()["Authorization"] == "Bearer one"
    token.write_text("two")
    assert a.refresh() is True
    assert a.headers()["Authorization"] == "Bearer two"


def test_context_extensions_are_kept(tmp_path):
    doc = kubeconfig("a", "https://x", {})
    doc["contexts"][0]["context"]["extensions"] = [
        {"name": "ant.dev/cache", "extension": {"url": "https://cache:8443"}}
    ]
    kc = config.load(str(write(tmp_path / "config", doc)))
    assert kc.extensions["ant.dev/cache"] == {"url": "https://cache:8443"}


def test_legacy_oidc_auth_provider_goes_through_the_kubernetes_loader(tmp_path):
    """auth-provider users are rare and legacy: ant defers to the kubernetes package for them."""

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    id_token = ".".join([b64({"alg": "none"}), b64({"exp": int(time.time()) + 3600}), "sig"])
    with scripted_server() as server:
        provider = {"name": "oidc", "config": {"id-token": id_token, "client-id": "ant"}}
        doc = kubeconfig("a", server.url, {"auth-provider": provider})
        kc = config.load(str(write(tmp_path / "config", doc)))
        server.replies.append(respond(200, b"{}"))
        from ant.kube.transport import Transport

        Transport.from_kubeconfig(kc).request("GET", "/version")
    assert server.seen[0].headers["Authorization"] == f"Bearer {id_token}"
