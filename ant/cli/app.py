"""The typer application: global options and the command table."""

from __future__ import annotations

from typing import Annotated

import typer
from typer._click.core import ParameterSource

from ant import __version__
from ant.cli.commands import (
    admin,
    cache,
    delete,
    list,
    logs,
    queue,
    restart,
    rollback,
    rollout,
    show,
    submit,
    update,
    whoami,
)
from ant.cli.context import App, GlobalOptions
from ant.cli.environment import Environment

HELP = """Run and manage ML training jobs on Kubernetes StatefulSets.

Every global option can also be set through the environment variable shown
next to it, and may come before or after the command name."""

app = typer.Typer(
    name="ant",
    help=HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ant {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    context: Annotated[
        str | None,
        typer.Option("--context", envvar="ANT_CONTEXT", help="kubeconfig context to use."),
    ] = None,
    kubeconfig: Annotated[
        str | None,
        typer.Option("--kubeconfig", envvar="ANT_KUBECONFIG", help="Path of the kubeconfig file."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", envvar="ANT_NAMESPACE", help="Namespace (default: the context's)."
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, envvar="ANT_VERBOSE", help="Log API calls (-vv: more)."
        ),
    ] = 0,
    cache: Annotated[
        str | None,
        typer.Option("--cache", envvar="ANT_CACHE_URL", help="Read through this ant cache URL."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()

    def setting(name: str, value: str | None, var: str) -> str | None:
        # click reads ANT_* from os.environ; the injected Environment is what counts.
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            return value
        return env.vars.get(var) or None

    if ctx.get_parameter_source("verbose") is not ParameterSource.COMMANDLINE:
        raw = env.vars.get("ANT_VERBOSE", "").strip()
        if raw and not raw.isdigit():
            raise typer.BadParameter(f"ANT_VERBOSE={raw!r} is not a number", param_hint="-v")
        verbose = int(raw or 0)
    namespace = setting("namespace", namespace, "ANT_NAMESPACE")
    if namespace is not None:
        from ant.jobs.schema import validate_namespace

        validate_namespace(namespace, "--namespace")
    ctx.obj = App(
        env,
        GlobalOptions(
            context=setting("context", context, "ANT_CONTEXT"),
            kubeconfig=setting("kubeconfig", kubeconfig, "ANT_KUBECONFIG"),
            namespace=namespace,
            verbose=verbose,
            cache_url=setting("cache", cache, "ANT_CACHE_URL"),
        ),
    )


app.command("submit", help=submit.HELP)(submit.submit)
app.command("list", help=list.HELP)(list.list_jobs)
app.command("show", help=show.HELP)(show.show)
app.command("queue", help=queue.HELP)(queue.queue)
app.command("logs", help=logs.HELP)(logs.logs)
app.command("restart", help=restart.HELP)(restart.restart)
app.command("update", help=update.HELP)(update.update)
app.add_typer(rollout.rollout, name="rollout")
app.command("rollback", help=rollback.HELP)(rollback.rollback)
app.command("delete", help=delete.HELP)(delete.delete)
app.add_typer(admin.admin, name="admin")
app.add_typer(cache.cache, name="cache")
app.command("whoami", help="Show who the API server says you are, and your ant user label.")(
    whoami.whoami
)
