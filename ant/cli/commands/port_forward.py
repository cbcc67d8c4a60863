from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import JobName

HELP = """Forward a local port to a port of one replica: ant port-forward JOB [-r N] LOCAL:REMOTE

Through the API server, as kubectl port-forward does (pods/portforward over WebSocket).
LOCAL 0 picks a free port; PORT alone means PORT:PORT. Listens on 127.0.0.1 until Ctrl-C."""


def port_forward(
    ctx: typer.Context,
    job: JobName,
    ports: Annotated[str, typer.Argument(help="LOCAL:REMOTE, or PORT for both.")],
    replica: Annotated[int, typer.Option("--replica", "-r", help="Replica index.")] = 0,
) -> None:
    app: App = ctx.obj
    app, job = locate(app, job)  # CLUSTER/JOB, or found among --clusters
    local, remote = parse_ports(ports)
    app.deadline.per_call()  # runs until stopped

    def ready(port: int) -> None:
        app.terminal.line(f"Forwarding from 127.0.0.1:{port} -> {remote}")

    app.api.port_forward(
        job, local, remote, replica=replica, on_ready=ready, on_error=app.terminal.warn
    )


def parse_ports(text: str) -> tuple[int, int]:
    """``LOCAL:REMOTE`` or ``PORT``: the two port numbers (LOCAL may be 0: any)."""
    from ant.errors import ValidationError

    local_text, colon, remote_text = text.partition(":")
    if not colon:
        remote_text = local_text
    try:
        local, remote = int(local_text), int(remote_text)
    except ValueError:
        local = remote = -1
    if not (0 <= local <= 65535 and 1 <= remote <= 65535):
        raise ValidationError(
            "PORTS", f"{text!r} is not LOCAL:REMOTE", hint="e.g. 8888:8888, or 0:6006 for any"
        )
    return local, remote
