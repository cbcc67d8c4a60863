from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ant.cli.completion import complete_statuses
from ant.cli.context import App
from ant.cli.garbage import collector_paused
from ant.cli.options import AllNamespaces, AllUsers, OutputFormat, User, output_option

if TYPE_CHECKING:
    from ant.jobs.model import Job
    from ant.jobs.scope import Across

HELP = """List jobs: yours in the current namespace, unless told otherwise.

One label query for StatefulSets, and one for pods when some job is not fully running
(always with -o wide), joined in memory."""


def list_jobs(
    ctx: typer.Context,
    all_users: AllUsers = False,
    user: User = None,
    all_namespaces: AllNamespaces = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. team=nlp.")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="The jobs of this sweep, with its parameters.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only these statuses, e.g. Pending,Failed.",
            autocompletion=complete_statuses,
        ),
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
    from ant.cli import clusters as across
    from ant.cli import views
    from ant.errors import UsageError
    from ant.jobs.documents import job_list
    from ant.jobs.durations import parse_duration
    from ant.jobs.identity import user_label

    app: App = ctx.obj
    if all_users and user:
        raise UsageError("--all-users and --user contradict each other")
    statuses = _statuses(status)
    newer_than = (
        datetime.now(UTC) - timedelta(seconds=parse_duration(since, "--since")) if since else None
    )
    mine = not all_users and not user  # the caller's own jobs: who that is, asked lazily
    owner = user_label(user) if user else None
    if sweep:  # the same as -l ant.dev/sweep=ID, plus the parameters as columns
        from ant.jobs import sweep as sweeps
        from ant.jobs.schema import SWEEP

        selector = ",".join(s for s in (selector, f"{SWEEP}={sweep}") if s)

    # The cache's compact rows fit the table; other outputs need every label and annotation.
    view = "table" if output in (OutputFormat.table, OutputFormat.name) and not sweep else "full"

    def fetch(app: App) -> list[Job]:
        """The jobs of one cluster."""
        namespace = None if all_namespaces else app.namespace
        # Across clusters, the cache's rows are tagged with theirs as they are read.
        tag = (app.options.context or "") if clusters else ""
        jobs = (
            None
            if watch
            else _from_cache(app, namespace, owner, mine, selector, statuses, view, tag)
        )
        if jobs is None:
            jobs = app.api.list(
                all_users=all_users,
                user=user,
                selector=selector,
                all_namespaces=namespace is None,
                replicas=output is OutputFormat.wide,
                preemptions=output not in (OutputFormat.table, OutputFormat.name),
                on_across=lambda found: _read_across(app, found, scopes),
            )
        return [
            j
            for j in jobs
            if (not statuses or j.status.value in statuses)
            and (newer_than is None or (j.created_at is not None and j.created_at >= newer_than))
        ]

    def render(jobs: list[Job], unanswered: dict[str, str] | None = None) -> None:
        if output is OutputFormat.json:
            app.terminal.json(job_list(jobs, unanswered))
        elif output is OutputFormat.yaml:
            app.terminal.yaml(job_list(jobs, unanswered))
        elif output is OutputFormat.name:
            for j in jobs:
                app.terminal.line(f"{j.cluster}/{j.name}" if j.cluster else j.name)
        elif not jobs and not unanswered:
            where = "" if all_namespaces or clusters else f" in {app.namespace}"
            app.terminal.info(f"no jobs found{where}")
        else:
            views.render_job_table(
                app.terminal,
                jobs,
                wide=output is OutputFormat.wide,
                namespaces=all_namespaces,
                meta_columns=sweeps.parameter_keys(jobs) if sweep else (),
                clusters=bool(clusters),
                unanswered=unanswered,
            )

    scopes: list[str | None] = []  # -A: the namespaces read (what --watch watches)
    clusters = across.selected(app)
    if clusters:
        _across(app, clusters, watch, fetch, lambda js, no: render(_in_order(bool(sweep), js), no))
        return
    if not watch:
        with collector_paused():
            render(_in_order(bool(sweep), fetch(app)))
        return
    from ant.jobs.schema import mine_selector

    app.deadline.per_call()  # runs until stopped: each call gets the whole deadline
    if mine and owner is None:
        owner = app.identity().label
    render(_in_order(bool(sweep), fetch(app)))  # first: with -A it finds where to watch
    _watch(
        app,
        scopes or [None if all_namespaces else app.namespace],
        mine_selector(owner, selector),
        lambda: _in_order(bool(sweep), fetch(app)),
        render,
    )


def _read_across(app: App, found: Across[list[Job]], scopes: list[str | None]) -> None:
    """-A where the cluster-wide list was refused: say once which namespaces were skipped;
    remember those read, for --watch."""
    if not scopes:
        app.skipped(found.skipped, "list jobs")
    scopes[:] = list(found.results)


def _in_order(by_sweep: bool, jobs: list[Job]) -> list[Job]:
    if by_sweep:
        from ant.jobs import sweep as sweeps

        return sorted(jobs, key=lambda j: (j.cluster, j.namespace, sweeps.index_of(j), j.name))
    # Finished jobs after the active ones: what runs is what one looks for.
    return sorted(jobs, key=lambda j: (j.cluster, j.namespace, j.status.finished, j.name))


def _across(
    app: App,
    clusters: list[str],
    watch: bool,
    fetch: Callable[[App], list[Job]],
    render: Callable[[list[Job], dict[str, str]], None],
) -> None:
    """Every cluster's jobs at once, shown together; exit PARTIAL if some did not answer."""
    from ant.cli import clusters as across
    from ant.errors import UsageError

    if watch:
        raise UsageError("--watch works on one cluster", hint="drop --clusters/--all-clusters")
    with collector_paused():
        answers = across.ask_each(app, clusters, fetch)
        jobs = [j for a in answers for j in across.with_cluster(a.value or [], a.cluster)]
        render(jobs, {a.cluster: a.error for a in answers if a.error is not None})
    across.check_complete(answers)


def _from_cache(
    app: App,
    namespace: str | None,
    owner: str | None,
    mine: bool,
    selector: str | None,
    statuses: set[str],
    view: str,
    cluster: str,
) -> list[Job] | None:
    """The rows from the ant cache's job endpoint (one request), if reads go through one,
    tagged with ``cluster``. All namespaces, refused: None, and the API path reads those
    the user may."""
    from ant.cache.client import cached_jobs
    from ant.errors import Forbidden

    try:
        return cached_jobs(
            app.reader,
            namespace,
            user_label=owner,
            mine=mine,
            selector=selector,
            statuses=statuses,
            view=view,
            cluster=cluster,
        )
    except Forbidden:
        if namespace is not None:
            raise
        return None


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
    scopes: list[str | None],
    selector: str,
    fetch: Callable[[], list[Job]],
    render: Callable[[list[Job]], None],
) -> None:
    """Redraw whenever ant's StatefulSets or pods change in ``scopes`` (namespaces; None:
    all at once): a watch on each, not polling. The first drawing is the caller's."""
    import time

    from ant.jobs.lifecycle import watch_changes

    with watch_changes(app.client, scopes, selector) as changed:
        while True:
            changed.wait()
            time.sleep(0.3)  # coalesce a burst of events into one redraw
            changed.clear()
            with collector_paused():
                jobs = fetch()
                if app.terminal.interactive:
                    app.terminal.raw("\x1b[2J\x1b[H")  # clear the screen: ant's own escape
                render(jobs)
