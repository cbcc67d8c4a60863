from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.context import App

HELP = """Your defaults: the config file ($ANT_CONFIG, else ~/.config/ant/config.yaml).

Keys: context, namespace, image, priority, queue, resources.{tpus,gpus,cpu,memory},
clusters (a,b), and contexts.NAME.{namespace,image,priority,queue,resources.*} for one
kubeconfig context. A flag beats its environment variable, which beats the file, which
beats ant's built-in default (docs/cli.md)."""

config = typer.Typer(help=HELP, no_args_is_help=True)


@config.command("view", short_help="Print the config file (and where it is).")
def view(ctx: typer.Context) -> None:
    """Print the config file, checked, and where it is."""
    from ant.cli import settings as s

    app: App = ctx.obj
    doc = app.settings.doc
    app.terminal.info(f"# {app.settings.path}")
    if not doc:
        app.terminal.info("(no settings: every default is ant's own)")
        return
    app.terminal.raw(s.dump(doc))


@config.command("set", short_help="Set one key, e.g. namespace research.")
def set_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="e.g. namespace, resources.tpus.")],
    value: Annotated[str, typer.Argument(help="Its value.")],
) -> None:
    """Set KEY to VALUE in the config file (made if missing); checked before it is written."""
    from ant.cli import settings as s

    app: App = ctx.obj
    _write(app, s.with_value(app.settings.doc, key, value, app.settings.path))
    app.terminal.line(f"{key} set in {app.settings.path}")


@config.command("unset", short_help="Remove one key.")
def unset_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="e.g. contexts.alice.namespace.")],
) -> None:
    """Remove KEY from the config file: its default is ant's own again."""
    from ant.cli import settings as s

    app: App = ctx.obj
    _write(app, s.without_value(app.settings.doc, key, app.settings.path))
    app.terminal.line(f"{key} unset in {app.settings.path}")


def _write(app: App, doc: dict[str, object]) -> None:
    from ant.cli import settings as s
    from ant.errors import UsageError
    from ant.kube.config import write_private

    try:
        write_private(app.settings.path, s.dump(doc))
    except OSError as e:
        raise UsageError(f"cannot write {app.settings.path}: {e.strerror}") from e
