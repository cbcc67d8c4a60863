"""ant warns, once, when protobuf runs on its slow pure-Python backend."""

from __future__ import annotations

from tests.unit.scripted_server import respond, scripted_server


def test_pure_python_protobuf_backend_is_warned_about(tmp_path):
    import subprocess
    import sys

    code = (
        "from ant.kube import codec; w = codec.check_upb(); "
        "print(codec.backend()); print(w); print(codec.check_upb())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "python"
    assert "upb" in out[1]
    assert out[2] == "None", "the warning is given once per process"


def test_the_cli_shows_the_backend_warning_once_on_stderr(tmp_path):
    import subprocess
    import sys

    kubeconfig = tmp_path / "config"
    with scripted_server() as server:
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
            f"clusters: [{{name: k, cluster: {{server: '{server.url}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
        )
        server.replies.append(respond(404, b"", "text/plain"))
        done = subprocess.run(
            [sys.executable, "-m", "ant", "--kubeconfig", str(kubeconfig), "whoami"],
            env={"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "upb" in warnings[0]
    assert done.returncode == 3
