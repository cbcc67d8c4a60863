"""The command line before typer parses it: the one table of global options, moving them
in front of the command name, and the job's own command after ``--``.

``ant -n research list`` and ``ant list -n research`` mean the same, as kubectl users
expect: ``main`` hoists the global options of the table below in front of the command
name, the root callback in ``app`` declares them from the table, and shell completion
(``completion``) reads the words typed so far with the same table. Everything after
``--`` is the job's command (``ant submit job.yaml -- python train.py``), never ant's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ant.errors import UsageError

if TYPE_CHECKING:
    from ant.cli.settings import Settings


@dataclass(frozen=True)
class GlobalOption:
    flags: tuple[str, ...]  # the long flag first
    env_var: str
    parameter: str  # the root callback's parameter and the GlobalOptions field
    help: str
    counted: bool = False  # a repeatable flag without a value (-v, -vv)
    switch: bool = False  # a flag without a value, on or off (--all-clusters)
    config_key: str = ""  # the config file's key below the variable (ant.cli.settings)
    # Its config value depends on the context in use (a context's section): App reads it.
    per_context: bool = False

    @property
    def takes_value(self) -> bool:
        return not (self.counted or self.switch)


GLOBAL_OPTIONS = (
    GlobalOption(
        ("--context",), "ANT_CONTEXT", "context", "kubeconfig context to use.", config_key="context"
    ),
    GlobalOption(("--kubeconfig",), "ANT_KUBECONFIG", "kubeconfig", "Path of the kubeconfig file."),
    GlobalOption(
        ("--namespace", "-n"),
        "ANT_NAMESPACE",
        "namespace",
        "Namespace (default: the context's).",
        config_key="namespace",
        per_context=True,
    ),
    GlobalOption(
        ("--verbose", "-v"), "ANT_VERBOSE", "verbose", "Log API calls (-vv: more).", counted=True
    ),
    GlobalOption(("--cache",), "ANT_CACHE_URL", "cache_url", "Read through this ant cache URL."),
    GlobalOption(
        ("--deadline",),
        "ANT_DEADLINE",
        "deadline",
        "Give up on the cluster after this (default 60s).",
    ),
    GlobalOption(
        ("--clusters",),
        "ANT_CLUSTERS",
        "clusters",
        "Contexts to work across, e.g. a,b.",
        config_key="clusters",
    ),
    GlobalOption(
        ("--all-clusters",),
        "ANT_ALL_CLUSTERS",
        "all_clusters",
        "All of ANT_CLUSTERS, else every context.",
        switch=True,
    ),
)

# Commands that take the job's command after `--`.
TAKES_TRAILING_COMMAND = frozenset({"submit", "update", "exec"})

# What people coming from Slurm, SkyPilot, XPK or kubectl type, and ant's command for it
# (docs/cli.md "Coming from other tools"): a one-line hint, exit 2, never a guess that acts.
OTHER_TOOLS_COMMANDS = {
    "cancel": "'ant delete JOB' stops a job and removes it",
    "stop": "'ant delete JOB' stops a job and removes it",
    "status": "'ant list' shows your jobs, 'ant show JOB' one of them",
    "describe": "'ant show JOB' shows a job",
    "ps": "'ant list' shows your jobs",
}


@dataclass(frozen=True)
class GlobalOptions:
    """The global options in force: from the command line, else from their variables."""

    context: str | None = None
    kubeconfig: str | None = None
    namespace: str | None = None
    verbose: int = 0
    cache_url: str | None = None
    deadline: str | None = None  # a duration; App.deadline_seconds
    clusters: str | None = None  # context names, comma-separated (ant.cli.clusters)
    all_clusters: bool = False


_BY_FLAG = {flag: option for option in GLOBAL_OPTIONS for flag in option.flags}
# A short counted flag repeated in one word: -vv, -vvv.
_SHORT_COUNTED = re.compile(
    "|".join(f"-{f[1]}{{2,}}" for o in GLOBAL_OPTIONS if o.counted for f in o.flags if len(f) == 2)
)


def _global_option(arg: str) -> tuple[GlobalOption, str | None] | None:
    """The global option ``arg`` is, with its ``=value`` if it has one; None if none."""
    name, eq, value = arg.partition("=")
    option = _BY_FLAG.get(name)
    if option is None and _SHORT_COUNTED.fullmatch(arg):
        return _BY_FLAG[arg[:2]], None
    if option is None or (not option.takes_value and eq):
        return None
    return option, value if eq else None


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """Move global options that follow the command name in front of it (before any ``--``)."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        found = _global_option(argv[i])
        if found is None:
            rest.append(argv[i])
            i += 1
            continue
        option, value = found
        takes_next = option.takes_value and value is None and i + 1 < len(argv)
        hoisted.extend(argv[i : i + 2] if takes_next else [argv[i]])
        i += 2 if takes_next else 1
    return hoisted + rest


def split_trailing_command(argv: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    """``ant submit job.yaml -- python train.py`` -> ant's arguments, the job's command."""
    if "--" not in argv:
        return list(argv), ()
    at = list(argv).index("--")
    return list(argv[:at]), tuple(argv[at + 1 :])


def command_name(args: Sequence[str]) -> str | None:
    """The first argument that is not an option or an option's value."""
    i = 0
    while i < len(args):
        found = _global_option(args[i])
        if found is not None:
            option, value = found
            i += 1 if not option.takes_value or value is not None else 2
            continue
        if not args[i].startswith("-"):
            return args[i]
        i += 1
    return None


def typed_values(args: Sequence[str]) -> dict[str, str | int]:
    """The global options given in ``args`` (hoisted), by parameter: the last one wins,
    counted flags add up."""
    values: dict[str, str | int] = {}
    i = 0
    while i < len(args):
        found = _global_option(args[i])
        if found is None:
            i += 1
            continue
        option, value = found
        if option.counted:
            count = len(args[i]) - 1 if not args[i].startswith("--") else 1
            values[option.parameter] = int(values.get(option.parameter, 0)) + count
        elif option.switch:
            values[option.parameter] = 1
        elif value is not None:
            values[option.parameter] = value
        else:
            values[option.parameter] = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        i += 1
    return values


def resolve(
    given: Mapping[str, str | int],
    env_vars: Mapping[str, str],
    settings: Settings | None = None,
) -> GlobalOptions:
    """The options in force: given on the command line, else their variables, else the
    config file (``settings``), else None. An option whose config value depends on the
    context (``per_context``) is left None here: ``App`` reads it once the context is known.

    (click could read ANT_* itself, but only from ``os.environ``: the injected
    environment is the one that counts.)
    """
    values: dict[str, str | int | bool | None] = {}
    for option in GLOBAL_OPTIONS:
        if option.switch:
            raw = env_vars.get(option.env_var, "").strip().lower()
            values[option.parameter] = bool(given.get(option.parameter)) or raw in ("1", "true")
        elif option.parameter in given:
            values[option.parameter] = given[option.parameter]
        elif not option.counted:
            value = env_vars.get(option.env_var) or None
            if value is None and option.config_key and not option.per_context and settings:
                value = settings.get(option.config_key)
                if isinstance(value, list):  # clusters: the file's list is the flag's a,b
                    value = ",".join(value) or None
            values[option.parameter] = value
        else:
            raw = env_vars.get(option.env_var, "").strip()
            if raw and not raw.isdigit():
                raise UsageError(f"{option.env_var}={raw!r} is not a number", hint="e.g. 0, 1 or 2")
            values[option.parameter] = int(raw or 0)
    if "context" in given and not ({"clusters", "all_clusters"} & given.keys()):
        # `--context X` on the command line means that one cluster, whatever ANT_CLUSTERS says.
        values["clusters"], values["all_clusters"] = None, False
    options = GlobalOptions(**values)  # type: ignore[arg-type]
    if options.namespace is not None:  # it becomes part of request paths
        from ant.jobs.schema import validate_namespace

        validate_namespace(options.namespace, "--namespace")
    return options
