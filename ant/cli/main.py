"""``ant`` and ``kubectl-ant`` entry point: the only place that turns errors into exit codes."""

from __future__ import annotations

import sys
from typing import NoReturn

from ant.cli.environment import Environment
from ant.errors import AntError, ExitCode

# Global options accepted anywhere before `--`, as kubectl users expect:
# `ant -n research list` and `ant list -n research` mean the same.
GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--context", "--kubeconfig", "-n", "--namespace", "--cache"})
GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-vv", "-vvv"})


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options that follow the command name in front of it."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
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


def run(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run one ant command; return its exit code. Never raises (but with ANT_DEBUG=1)."""
    # typer vendors click; its exception classes live in this private module.
    from typer import Abort
    from typer._click.exceptions import ClickException, UsageError

    from ant.cli.app import app
    from ant.cli.terminal import Terminal

    env = env or Environment()
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    terminal = Terminal(env)
    try:
        result = app(args=args, prog_name="ant", standalone_mode=False, obj=env)
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
