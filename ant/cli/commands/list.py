from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ant.cli.context import App
from ant.cli.options import OutputFormat, output_option

if TYPE_CHECKING:
    from ant.jobs.model import Job

HELP = """List jobs: yours in the current namespace, unless told otherwise.

One label query for StatefulSets and one for pods, joined in memory."""


def list_jobs(
    ctx: typer.Context,
    all_users: Annotated[bool, typer.Option("--all-users", help="Everyone's jobs.")] = False,
    user: Annotated[str | None, typer.Option("--user", help="This user's jobs.")] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")
    ] = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. team=nlp.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only these statuses, e.g. Pending,Partial.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only jobs created within, e.g. 24h.")
    ] = None,
    output: Annotated[
        OutputFormat,
        output_option(
            OutputFormat.table,
            OutputFormat.wide,
            OutputFormat.json,
            OutputFormat.yaml,
            OutputFormat.name,
        ),
    ] = OutputFormat.table,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep the table updated.")] = False,
) -> None:
    from ant.cli import views
    from ant.errors import UsageError
    from ant.jobs.identity import user_label, whoami
    from ant.jobs.lifecycle import list_jobs as query

    app: App = ctx.obj
    if all_users and user:
        raise UsageError("--all-users and --user contradict each other")
    statuses = _statuses(status)
    newer_than = (
        datetime.now(UTC) - timedelta(seconds=views.parse_duration(since, "--since"))
        if since
        else None
    )
    namespace = None if all_namespaces else app.namespace
    owner = None if all_users else (user_label(user) if user else whoami(app.client).label)

    def fetch() -> list[Job]:
        jobs = query(app.client, namespace, user_label=owner, selector=selector)
        jobs = [
            j
            for j in jobs
            if (not statuses or j.status.value in statuses)
            and (newer_than is None or (j.created_at is not None and j.created_at >= newer_than))
        ]
        return sorted(jobs, key=lambda j: (j.namespace, j.name))

    def render(jobs: list[Job]) -> None:
        if output is OutputFormat.json:
            app.terminal.json(views.job_list_document(jobs))
        elif output is OutputFormat.yaml:
            app.terminal.yaml(views.job_list_document(jobs))
        elif output is OutputFormat.name:
            for j in jobs:
                app.terminal.line(j.name)
        elif not jobs:
            app.terminal.info(f"no jobs found{'' if namespace is None else f' in {namespace}'}")
        else:
            views.render_job_table(
                app.terminal, jobs, wide=output is OutputFormat.wide, namespaces=namespace is None
            )

    if not watch:
        render(fetch())
        return
    from ant.jobs.schema import mine_selector

    _watch(app, namespace, mine_selector(owner, selector), fetch, render)


def _statuses(text: str | None) -> set[str]:
    from ant.errors import ValidationError
    from ant.jobs.model import JobStatus

    if not text:
        return set()
    wanted = {s.strip().capitalize() for s in text.split(",") if s.strip()}
    known = [k.value for k in JobStatus]
    unknown = wanted.difference(known)
    if unknown:
        raise ValidationError(
            "--status",
            f"unknown status {', '.join(sorted(unknown))}",
            hint=f"use {', '.join(known)}",
        )
    return wanted


def _watch(
    app: App,
    namespace: str | None,
    selector: str,
    fetch: Callable[[], list[Job]],
    render: Callable[[list[Job]], None],
) -> None:
    """Redraw whenever ant's StatefulSets or pods change: a watch on each, not polling."""
    import time

    from ant.jobs.lifecycle import watch_changes

    with watch_changes(app.client, namespace, selector) as changed:
        while True:
            jobs = fetch()
            if app.terminal.interactive:
                app.terminal.write("\x1b[2J\x1b[H")
            render(jobs)
            changed.wait()
            time.sleep(0.3)  # coalesce a burst of events into one redraw
            changed.clear()
