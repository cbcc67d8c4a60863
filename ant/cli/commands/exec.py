from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import Force, JobName

HELP = """Run a command in one replica of a job: ant exec JOB [-r N] -- CMD [ARGS...]

Through the API server, as kubectl exec does (pods/exec over WebSocket); no stdin, no
terminal. Its output is relayed as it comes and ant exits with its exit code. Another
user's job only with --force (a command can change anything in the pod)."""


def exec_(
    ctx: typer.Context,
    job: JobName,
    replica: Annotated[int, typer.Option("--replica", "-r", help="Replica index.")] = 0,
    force: Force = False,
) -> int:
    from ant.errors import UsageError
    from ant.jobs import ownership

    app: App = ctx.obj
    app, job = locate(app, job)  # CLUSTER/JOB, or found among --clusters
    command = app.env.trailing_command
    if not command:
        raise UsageError("no command to run", hint=f"ant exec {job} -- CMD [ARGS...]")
    app.deadline.per_call()  # a command runs as long as it runs

    def out(data: bytes) -> None:
        app.terminal.raw(data.decode(errors="replace"))  # the command's own bytes

    def err(data: bytes) -> None:
        app.terminal.raw_stderr(data.decode(errors="replace"))

    found = app.api.get(job, fresh=True)
    owner = ownership.job_owner(found)
    ownership.check(job, app.namespace, owner, app.identity(), force=force, flag="--force")
    # Checked here, to name the flag: the API need not check again.
    result = app.api.exec(found, command, replica=replica, on_stdout=out, on_stderr=err, force=True)
    if result.message:
        app.terminal.error(result.message)
    return result.exit_code
