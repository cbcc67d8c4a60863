"""``ant`` and ``kubectl-ant`` entry point: the only place that turns errors into exit codes."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import NoReturn

from ant.cli.environment import Environment
from ant.errors import AntError, ExitCode

# Global options accepted anywhere before `--`, as kubectl users expect:
# `ant -n research list` and `ant list -n research` mean the same.
GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--context", "--kubeconfig", "-n", "--namespace", "--cache"})
GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-vv", "-vvv"})
# Commands that take the job's command after `--`.
TAKES_TRAILING_COMMAND = frozenset({"submit", "update"})


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options that follow the command name in front of it (before any ``--``)."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS_WITH_VALUE:
            takes_next = "=" not in arg and i + 1 < len(argv)
            hoisted.extend(argv[i : i + 2] if takes_next else [arg])
            i += 2 if takes_next else 1
            continue
        if arg in GLOBAL_FLAGS:
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def split_trailing_command(argv: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``ant submit job.yaml -- python train.py`` -> ant's arguments, the job's command."""
    if "--" not in argv:
        return argv, ()
    at = argv.index("--")
    return argv[:at], tuple(argv[at + 1 :])


def command_name(args: list[str]) -> str | None:
    """The first argument that is not an option or an option's value."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if not arg.startswith("-"):
            return arg
        i += 1
    return None


def run(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run one ant command; return its exit code. Never raises (but with ANT_DEBUG=1)."""
    # typer vendors click; its exception classes live in this private module.
    from typer import Abort
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    from ant.cli.app import app
    from ant.cli.terminal import Terminal

    argv = sys.argv[1:] if argv is None else argv
    args, trailing = split_trailing_command(argv)
    args = hoist_global_options(args)
    env = replace(env or Environment(), argv=tuple(argv), trailing_command=trailing)
    terminal = Terminal(env)
    if trailing and command_name(args) not in TAKES_TRAILING_COMMAND:
        terminal.error(
            f"unexpected arguments after '--': {' '.join(trailing)} "
            f"(only {' and '.join(sorted(TAKES_TRAILING_COMMAND))} take a command)"
        )
        return ExitCode.USAGE
    try:
        result = app(args=args, prog_name="ant", standalone_mode=False, obj=env)
    except NoArgsIsHelpError as e:
        # `ant` or `ant admin` alone: the help is the answer, not an error message.
        terminal.info(e.format_message().rstrip())
        return ExitCode.USAGE
    except UsageError as e:
        command = e.ctx.command_path if e.ctx else "ant"
        terminal.error(f"{e.format_message()} (see '{command} --help')")
        return ExitCode.USAGE
    except (KeyboardInterrupt, Abort):
        terminal.error("interrupted")
        return ExitCode.INTERRUPTED
    except AntError as e:
        if env.debug:
            raise
        terminal.error(str(e))
        return e.exit_code
    except ClickException as e:
        terminal.error(e.format_message())
        return ExitCode.ERROR
    except Exception as e:
        if env.debug:
            raise
        terminal.error(f"unexpected {type(e).__name__}: {e} (ANT_DEBUG=1 shows the traceback)")
        return ExitCode.ERROR
    return int(result) if isinstance(result, int) else ExitCode.OK


def main() -> NoReturn:
    sys.exit(run())
