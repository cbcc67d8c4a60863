"""``ant`` and ``kubectl-ant`` entry point: the only place that turns errors into exit codes."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

from ant.cli.command_line import (
    TAKES_TRAILING_COMMAND,
    command_name,
    hoist_global_options,
    split_trailing_command,
)
from ant.cli.environment import Environment
from ant.errors import AntError, ExitCode

if TYPE_CHECKING:
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

    if trailing and command_name(args) not in TAKES_TRAILING_COMMAND:
        terminal().error(
            f"unexpected arguments after '--': {' '.join(trailing)} "
            f"(only {' and '.join(sorted(TAKES_TRAILING_COMMAND))} take a command)"
        )
        return ExitCode.USAGE
    try:
        result = app(args=args, prog_name="ant", standalone_mode=False, obj=env)
    except NoArgsIsHelpError as e:
        # `ant` or `ant admin` alone: the help is the answer, not an error message.
        terminal().info(e.format_message().rstrip())
        return ExitCode.USAGE
    except UsageError as e:
        command = e.ctx.command_path if e.ctx else "ant"
        terminal().error(f"{e.format_message()} (see '{command} --help')")
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


def main() -> NoReturn:
    sys.exit(run())
