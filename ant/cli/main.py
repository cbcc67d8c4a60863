"""``ant`` and ``kubectl-ant`` entry point: the only place that turns errors into exit codes."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

from ant.cli.command_line import (
    OTHER_TOOLS_COMMANDS,
    TAKES_TRAILING_COMMAND,
    command_name,
    hoist_global_options,
    split_trailing_command,
)
from ant.cli.environment import Environment
from ant.errors import AntError, ExitCode

if TYPE_CHECKING:
    from typer._click.exceptions import UsageError as ClickUsageError

    from ant.cli.terminal import Terminal


def run(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run one ant command; return its exit code. Never raises (but with ANT_DEBUG=1)."""
    # typer vendors click; its exception classes live in this private module.
    from typer import Abort
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    from ant.cli.app import app

    argv = sys.argv[1:] if argv is None else argv
    args, trailing = split_trailing_command(argv)
    args = hoist_global_options(args)
    env = replace(env or Environment(), argv=tuple(argv), trailing_command=trailing)

    def terminal() -> Terminal:  # made only to report: `ant --help` needs none
        from ant.cli.terminal import Terminal

        return Terminal(env)

    command = command_name(args)
    if command in OTHER_TOOLS_COMMANDS:
        terminal().error(f"ant has no '{command}' command: {OTHER_TOOLS_COMMANDS[command]}")
        return ExitCode.USAGE
    if trailing and command not in TAKES_TRAILING_COMMAND:
        terminal().error(
            f"unexpected arguments after '--': {' '.join(trailing)} "
            f"(only {', '.join(sorted(TAKES_TRAILING_COMMAND)[:-1])} and "
            f"{sorted(TAKES_TRAILING_COMMAND)[-1]} take a command)"
        )
        return ExitCode.USAGE
    try:
        result = app(args=args, prog_name="ant", standalone_mode=False, obj=env)
    except NoArgsIsHelpError as e:
        # `ant` or `ant admin` alone: the help is the answer, not an error message.
        terminal().info(e.format_message().rstrip())
        return ExitCode.USAGE
    except UsageError as e:
        terminal().error(_forgotten_dashes(e) or f"{e.format_message()} (see '{_path(e)} --help')")
        return ExitCode.USAGE
    except (KeyboardInterrupt, Abort):
        terminal().error("interrupted")
        return ExitCode.INTERRUPTED
    except AntError as e:
        if env.debug:
            raise
        terminal().error(str(e))
        return e.exit_code
    except ClickException as e:
        terminal().error(e.format_message())
        return ExitCode.ERROR
    except Exception as e:
        if env.debug:
            raise
        terminal().error(f"unexpected {type(e).__name__}: {e} (ANT_DEBUG=1 shows the traceback)")
        return ExitCode.ERROR
    return int(result) if isinstance(result, int) else ExitCode.OK


def _path(e: ClickUsageError) -> str:
    return e.ctx.command_path if e.ctx else "ant"


def _forgotten_dashes(e: ClickUsageError) -> str | None:
    """``ant submit --image I python train.py``: the job's command without ``--`` before it."""
    ctx = e.ctx
    if ctx is None or ctx.info_name not in TAKES_TRAILING_COMMAND:
        return None
    if type(e).__name__ == "NoSuchOption":  # click's; `--lr` of `python train.py --lr 3`
        return (
            f"No such option: {getattr(e, 'option_name', '')} (if it is the job command's, "
            f"put that command after '--': "
            f"{ctx.command_path} [OPTIONS] -- COMMAND [ARGS]...)"
        )
    if not e.message.startswith("Got unexpected extra argument"):
        return None
    extra = e.message.rpartition("(")[2].removesuffix(")")
    words = " ".join(w for w in (ctx.params.get("file"), extra) if w)
    return (
        f"'{words}' looks like the job's command: put it after '--' "
        f"({ctx.command_path} [OPTIONS] -- {words})"
    )


def main() -> NoReturn:
    sys.exit(run())
