"""Shell completion of job names, from the cluster: fast, or nothing at all.

The shell runs ``ant`` with ``_ANT_COMPLETE=complete_<shell>`` on every TAB, so this
must never hang a prompt nor print a traceback into it: one attempt per request, a
short timeout, a hard deadline for the whole lookup, and any failure means "no
suggestions".
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import NoReturn

import typer

from ant.cli.command_line import (
    hoist_global_options,
    resolve,
    split_trailing_command,
    typed_values,
)
from ant.cli.environment import Environment

TIMEOUT = 2.0  # seconds, per request and for the whole lookup


def complete_job(ctx: typer.Context, incomplete: str) -> list[tuple[str, str] | str]:
    """The user's jobs in the namespace whose names start with ``incomplete``."""
    found: list[tuple[str, str] | str] = []

    def lookup() -> None:
        try:
            found.extend(_jobs(ctx, incomplete))
        except Exception:
            found.clear()

    worker = threading.Thread(target=lookup, daemon=True, name="ant-complete")
    worker.start()
    worker.join(TIMEOUT + 0.5)
    return [] if worker.is_alive() else found


def _jobs(ctx: typer.Context, incomplete: str) -> list[tuple[str, str] | str]:
    from ant.cli.settings import Settings
    from ant.jobs import schema
    from ant.jobs.identity import whoami
    from ant.kube import config
    from ant.kube import resources as r
    from ant.kube.client import Client
    from ant.kube.transport import RetryPolicy, Transport

    root = ctx.find_root()
    env_vars: Mapping[str, str] = root.obj.vars if isinstance(root.obj, Environment) else os.environ
    # ant takes global options after the command name too (``ant logs -n x <TAB>``), which
    # only the hoisting understands: read them from the words typed so far.
    words, _ = split_trailing_command(_typed_words(env_vars))
    options = resolve(
        typed_values(hoist_global_options(words)), env_vars, Settings.for_env(env_vars)
    )
    kc = config.load(options.kubeconfig, options.context, env_vars)
    client = Client(
        Transport.from_kubeconfig(
            kc,
            timeout=TIMEOUT,
            connect_timeout=TIMEOUT,
            retry=RetryPolicy(attempts=1),
            stdlib_http=True,
        )
    )
    try:
        namespace = options.namespace or kc.namespace
        user_label = whoami(client).label
        listed = client.list_metadata(
            r.STATEFULSETS, namespace, label_selector=schema.mine_selector(user_label)
        )
    finally:
        client.transport.close()
    typed = set(_already_typed(ctx))
    out: list[tuple[str, str] | str] = []
    for item in sorted(listed.items, key=lambda i: i.metadata.name):
        name = item.metadata.name
        if not name.startswith(incomplete) or name in typed:
            continue
        description = item.metadata.annotations.get(schema.DESCRIPTION, "")
        out.append((name, " ".join(description.split())[:80]) if description else name)
    return out


def _typed_words(env_vars: Mapping[str, str]) -> list[str]:
    """The words before the one being completed, without the program name."""
    from typer._click.shell_completion import split_arg_string

    if "COMP_WORDS" in env_vars:  # bash
        words = split_arg_string(env_vars["COMP_WORDS"])
        try:
            cword = int(env_vars.get("COMP_CWORD", len(words)))
        except ValueError:
            cword = len(words)
        return words[1:cword]
    line = env_vars.get("_TYPER_COMPLETE_ARGS", "")  # zsh, fish
    words = split_arg_string(line)
    if words and not line.endswith(" "):
        words = words[:-1]
    return words[1:]


def _already_typed(ctx: typer.Context) -> list[str]:
    """Job names already on the command line (``ant delete a b <TAB>``)."""
    value = ctx.params.get("jobs")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


# ---- fixed choices: offline ----------------------------------------------------------------
def complete_priority(incomplete: str) -> list[str]:
    """``--priority``: ant's three priorities."""
    from ant.jobs.schema import PRIORITIES

    return [p for p in PRIORITIES if p.startswith(incomplete)]


def complete_on_failure(incomplete: str) -> list[str]:
    """``submit --on-failure``: the failure policies."""
    from ant.jobs.schema import ON_FAILURE_POLICIES

    return [p for p in ON_FAILURE_POLICIES if p.startswith(incomplete)]


def complete_wait_condition(incomplete: str) -> list[str]:
    """``wait --for``: what ant wait can wait for."""
    from ant.jobs.waiting import Condition

    return [c.value for c in Condition if c.value.startswith(incomplete)]


def complete_statuses(incomplete: str) -> list[str]:
    """``--status A,B``: the statuses not typed yet, after what was (``Pending,R<TAB>``)."""
    from ant.jobs.model import JobStatus

    done, _, last = incomplete.rpartition(",")
    typed = {s.lower() for s in done.split(",") if s}
    prefix = f"{done}," if done else ""
    return [
        prefix + s.value
        for s in JobStatus
        if s.value.lower().startswith(last.lower()) and s.value.lower() not in typed
    ]


# ---- kubectl's plugin completion ---------------------------------------------------------------
NO_FILE_COMPLETION = 4  # cobra's ShellCompDirectiveNoFileComp


def kubectl_complete() -> NoReturn:
    """``kubectl_complete-ant``: what ``kubectl ant <TAB>`` runs (kubectl 1.26+).

    kubectl calls ``kubectl_complete-ant __complete WORD... INCOMPLETE`` and reads cobra's
    protocol: one candidate per line (``value<TAB>description``), then ``:DIRECTIVE``.
    ant answers through its own fish completion, whose lines have exactly that form.
    """
    import contextlib
    import io
    import shlex

    from ant.cli.main import run

    args = sys.argv[1:]
    if args[:1] == ["__complete"]:
        args = args[1:]
    *words, incomplete = args or [""]
    line = " ".join(shlex.quote(w) for w in ["ant", *words]) + " "
    line += shlex.quote(incomplete) if incomplete else ""
    os.environ.update(
        _ANT_COMPLETE="complete_fish",
        _TYPER_COMPLETE_ARGS=line,
        _TYPER_COMPLETE_FISH_ACTION="get-args",
    )
    answer = io.StringIO()
    with contextlib.redirect_stdout(answer), contextlib.suppress(SystemExit):
        run([])
    candidates = [c for c in answer.getvalue().splitlines() if c]
    sys.stdout.write("".join(f"{c}\n" for c in candidates) + f":{NO_FILE_COMPLETION}\n")
    sys.exit(0)
