from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import OutputFormat, output_option

HELP = "Show who the API server says you are, and your ant user label."


def whoami(
    ctx: typer.Context,
    output: Annotated[OutputFormat, output_option(OutputFormat.table, OutputFormat.json)] = (
        OutputFormat.table
    ),
) -> None:
    from ant.cli.terminal import visible
    from ant.jobs import documents
    from ant.jobs.identity import whoami as resolve

    app: App = ctx.obj
    identity = resolve(app.client)
    record = documents.whoami(identity, app.kubeconfig.context, app.namespace)
    if output is OutputFormat.json:
        app.terminal.json(record)
        return
    for key, value in record.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        app.terminal.line(visible(f"{key + ':':<11}{shown}"))  # one line per field
