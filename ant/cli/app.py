"""The typer application: the global options and the command table.

A command's module is imported only when that command runs (or its own help is asked
for): ``ant --help`` lists every command from the table below without importing any.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer._click import Command as ClickCommand
from typer._click import Context as ClickContext
from typer._click import HelpFormatter
from typer._click.core import ParameterSource
from typer.core import TyperGroup

from ant import __version__
from ant.cli.command_line import GLOBAL_OPTIONS, resolve


@dataclass(frozen=True)
class CommandEntry:
    name: str  # as typed; its module: ``module``
    summary: str  # one whole sentence: its line in `ant --help`
    attribute: str = ""  # the command's function or command group's typer.Typer: default `name`

    @property
    def module(self) -> str:
        """Its module in ant.cli.commands: the name, '-' written '_'."""
        return self.name.replace("-", "_")


COMMANDS = (
    CommandEntry("submit", "Submit a job: a headless Service and a StatefulSet."),
    CommandEntry("list", "List jobs: yours in the namespace, unless told otherwise.", "list_jobs"),
    CommandEntry("show", "Show a job: its metadata, every replica and recent events."),
    CommandEntry("queue", "Show the jobs waiting for capacity, in the scheduler's order."),
    CommandEntry("logs", "Print the logs of one replica of a job, or of all of them."),
    CommandEntry("exec", "Run a command in one replica of a job.", "exec_"),
    CommandEntry("port-forward", "Forward a local port to a port of one replica.", "port_forward"),
    CommandEntry("restart", "Restart replicas: delete their pods to have them recreated."),
    CommandEntry("update", "Change a job's pod template; nothing restarts."),
    CommandEntry("rollout", "Replace a job's pods that run an old revision, batch by batch."),
    CommandEntry("rollback", "Restore the pod template of a job's previous revision."),
    CommandEntry("wait", "Wait until jobs are running, finished or succeeded."),
    CommandEntry("delete", "Delete jobs: their StatefulSet, pods and Service."),
    CommandEntry("whoami", "Show who the API server says you are, and your ant user label."),
    CommandEntry("config", "Show or change your defaults: the config file."),
    CommandEntry("admin", "Set up a cluster for ant (needs cluster-admin rights)."),
    CommandEntry("cache", "Serve ant's reads from memory: the read cache."),
    CommandEntry("controller", "Run the controller that makes jobs succeed, fail and restart."),
)

HELP = """Run and manage ML training jobs on Kubernetes StatefulSets.

Every global option can also be set through the environment variable shown
next to it, and may come before or after the command name."""


def _build(entry: CommandEntry) -> ClickCommand:
    """The click command of one table entry: its module is imported here."""
    from typer.main import get_command_from_info, get_group_from_info
    from typer.models import CommandInfo, TyperInfo

    module = importlib.import_module(f"ant.cli.commands.{entry.module}")
    target = getattr(module, entry.attribute or entry.name)
    if isinstance(target, typer.Typer):
        return get_group_from_info(
            TyperInfo(target, name=entry.name, short_help=entry.summary),
            pretty_exceptions_short=False,
            suggest_commands=True,
            rich_markup_mode=None,
        )
    info = CommandInfo(name=entry.name, callback=target, help=module.HELP, short_help=entry.summary)
    return get_command_from_info(info, pretty_exceptions_short=False, rich_markup_mode=None)


class _LazyCommands(MutableMapping[str, ClickCommand]):
    """The command table as click's name -> command mapping; each built on first use."""

    def __init__(self, entries: tuple[CommandEntry, ...]) -> None:
        self.entries = {e.name: e for e in entries}
        self.built: dict[str, ClickCommand] = {}

    def __getitem__(self, name: str) -> ClickCommand:
        if name not in self.built:
            self.built[name] = _build(self.entries[name])
        return self.built[name]

    def __setitem__(self, name: str, command: ClickCommand) -> None:
        raise TypeError("ant's commands come from its command table")

    def __delitem__(self, name: str) -> None:
        raise TypeError("ant's commands come from its command table")

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


class _AntGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(COMMANDS)

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(e.name, e.summary) for e in COMMANDS])


app = typer.Typer(
    name="ant",
    cls=_AntGroup,
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


_OPTIONS: Mapping[str, Any] = {
    o.parameter: typer.Option(*o.flags, envvar=o.env_var, help=o.help, count=o.counted)
    for o in GLOBAL_OPTIONS
}


@app.callback()
def main_options(
    ctx: typer.Context,
    context: Annotated[str | None, _OPTIONS["context"]] = None,
    kubeconfig: Annotated[str | None, _OPTIONS["kubeconfig"]] = None,
    namespace: Annotated[str | None, _OPTIONS["namespace"]] = None,
    verbose: Annotated[int, _OPTIONS["verbose"]] = 0,
    cache_url: Annotated[str | None, _OPTIONS["cache_url"]] = None,
    deadline: Annotated[str | None, _OPTIONS["deadline"]] = None,
    clusters: Annotated[str | None, _OPTIONS["clusters"]] = None,
    all_clusters: Annotated[bool, _OPTIONS["all_clusters"]] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    # Not run for `ant --help`: what a command needs is imported here.
    from ant.cli.context import App
    from ant.cli.environment import Environment
    from ant.cli.settings import Settings

    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    given = {
        o.parameter: ctx.params[o.parameter]
        for o in GLOBAL_OPTIONS
        if ctx.get_parameter_source(o.parameter) is ParameterSource.COMMANDLINE
    }
    settings = Settings.for_env(env.vars)  # read only if a value is wanted from it
    ctx.obj = App(env, resolve(given, env.vars, settings), settings)
