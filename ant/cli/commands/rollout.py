from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ant.cli.clusters import locate
from ant.cli.completion import complete_job
from ant.cli.context import App
from ant.cli.options import Force, JobOrStatefulSet, OutputFormat, output_option

if TYPE_CHECKING:
    from ant.cli.terminal import Progress
    from ant.jobs.rollout import RolloutOptions, RolloutPlan, RolloutProgress, RolloutStatus

HELP = """Replace a job's pods that run an old revision, batch by batch.

\b
  ant rollout JOB [OPTIONS]   roll the job out to its update revision
  ant rollout status JOB      revisions, pods on each, unavailable pods, pause reason

A job's pods never restart by themselves after 'ant update': the rollout deletes
the pods whose revision differs from the StatefulSet's update revision, a batch at a
time, and waits until each batch is back Running and Ready on the new revision before
the next. Run it again at any time (after a pause, Ctrl-C or a crash) to carry on;
pods already on the new revision are never touched. Exit code 7: paused on a pod that
did not become Ready. See docs/rollout.md."""

RUN_HELP = """Roll JOB out to its update revision ('ant rollout JOB' runs this).

JOB is a job name, or statefulset/NAME for a StatefulSet ant did not create.
By default one pod at a time, highest replica first; pods already unavailable count
against --max-unavailable and are replaced first."""

STATUS_HELP = "Show revisions, how many pods run each, unavailable pods, and the rollout state."


class Order(StrEnum):
    descending = "descending"
    ascending = "ascending"


class OnFailure(StrEnum):
    pause = "pause"
    continue_ = "continue"


class _DefaultCommandGroup(TyperGroup):
    """``ant rollout JOB ...`` means ``ant rollout run JOB ...``; ``status`` is a subcommand.

    (A job called "status" is still reachable: ``ant rollout run status``.)
    """

    default_command = "run"

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """``ant rollout <TAB>``: the subcommands and the user's jobs."""
        from typer._click.shell_completion import CompletionItem

        items: list[Any] = super().shell_complete(ctx, incomplete)
        if not incomplete.startswith("-"):
            for job in complete_job(ctx, incomplete):
                name, help_ = job if isinstance(job, tuple) else (job, None)
                if name not in self.commands:
                    items.append(CompletionItem(name, help=help_))
        return items

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.subcommand_metavar]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


rollout = typer.Typer(
    cls=_DefaultCommandGroup,
    help=HELP,
    no_args_is_help=True,
    subcommand_metavar="JOB [OPTIONS] | status JOB",
    rich_markup_mode=None,
)


@rollout.command("run", help=RUN_HELP, short_help="Roll a job out to its update revision.")
def run(
    ctx: typer.Context,
    job: JobOrStatefulSet,
    max_unavailable: Annotated[
        str | None,
        typer.Option(
            "--max-unavailable",
            help="Most of the job's pods unavailable at once, N or P% of replicas "
            "(pods already down count). Default 1.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Replace exactly N pods per batch instead (ignores pods down for other reasons).",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        str | None,
        typer.Option(
            "--replicas", help="Only these replicas, e.g. 0,3,5-7 (a canary).", show_default=False
        ),
    ] = None,
    order: Annotated[
        Order, typer.Option("--order", help="Replica order within the rollout.")
    ] = Order.descending,
    timeout: Annotated[
        str, typer.Option("--timeout", help="How long a batch may take to become Ready.")
    ] = "10m",
    on_failure: Annotated[
        OnFailure,
        typer.Option(
            "--on-failure",
            help="When pods are not Ready in time: pause (stop, exit 7) or continue with the "
            "rest (within the budget; exit 7 at the end).",
        ),
    ] = OnFailure.pause,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan: which pods, in which batches.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Force = False,
) -> None:
    app: App = ctx.obj
    app, job = locate(app, job)
    options = rollout_options(
        max_unavailable=max_unavailable,
        batch_size=batch_size,
        replicas=replicas,
        order=order.value,
        timeout=timeout,
        on_failure=on_failure.value,
    )
    execute(app, job, options, dry_run=dry_run, yes=yes, force=force)


def rollout_options(
    *,
    max_unavailable: str | None = None,
    batch_size: int | None = None,
    replicas: str | None = None,
    order: str = "descending",
    timeout: str = "10m",
    on_failure: str = "pause",
) -> RolloutOptions:
    """Flags -> RolloutOptions (shared with ``ant update --rollout``)."""
    from ant.jobs import rollout as ro
    from ant.jobs.durations import parse_duration

    return ro.RolloutOptions(
        max_unavailable=ro.parse_budget(max_unavailable) if max_unavailable else None,
        batch_size=batch_size,
        replicas=ro.parse_replicas(replicas) if replicas is not None else None,
        order="ascending" if order == "ascending" else "descending",
        timeout=float(parse_duration(timeout, "--timeout")),
        on_failure="continue" if on_failure == "continue" else "pause",
    )


def execute(
    app: App, target: str, options: RolloutOptions, *, dry_run: bool, yes: bool, force: bool
) -> None:
    """Plan, confirm, run with a progress bar, report. Shared with ``ant update --rollout``."""
    from ant.errors import Aborted
    from ant.jobs import ownership
    from ant.jobs import rollout as ro
    from ant.jobs.podwatch import PodTracker
    from ant.kube import resources as r

    client = app.client
    sts = ro.wait_observed(client, ro.load(client, app.namespace, target))
    if dry_run:
        pods = PodTracker(client, app.namespace, ro.pod_selector(sts)).pods.values()
        render_plan(app, ro.plan(sts, pods, options))
        return
    name = sts.metadata.name
    probe = ownership.dry_run_delete(client, r.PODS, app.namespace, f"{name}-0")
    other = app.check_owner(name, sts, force=force, probe=probe)
    whose = f" ({other.username}'s job)" if other else ""
    if not yes and app.env.stdin_isatty:
        # Scripts without --yes are refused by confirm(); people see what will happen first.
        pods = PodTracker(client, app.namespace, ro.pod_selector(sts)).pods.values()
        preview = ro.plan(sts, pods, options)
        if preview.to_replace and not app.terminal.confirm(
            f"Replace {len(preview.to_replace)} pod(s) of {name}{whose} with revision "
            f"{preview.target_revision} ({preview.limit_text})?",
            assume_yes=False,
        ):
            raise Aborted("nothing replaced")
    elif not yes:
        app.terminal.confirm(f"Roll out {name}{whose}?", assume_yes=False)  # raises: needs --yes
    app.deadline.per_call()  # batches wait as long as they need: each call gets the deadline

    app.terminal.info(
        f"rolling out {name} to {sts.status.updateRevision}: "
        f"{options.describe_limit(sts.spec.replicas)}, timeout {options.timeout:g}s per batch"
    )
    total = len(options.replicas) if options.replicas is not None else sts.spec.replicas
    with app.terminal.progress(total, f"{name}: starting") as bar:
        result = ro.run(client, sts, options, on_progress=lambda p: _show(bar, name, p))
    scope = "" if options.replicas is None else f" (replicas {ro.format_indexes(result.selected)})"
    app.terminal.line(
        f"rollout of {name}{scope} complete: {result.updated}/{result.total} pods Ready on "
        f"{result.target_revision}; {len(result.deleted)} replaced in {result.batches} batch(es)"
    )
    if options.replicas is not None and result.total < result.replicas:
        app.terminal.info(f"'ant rollout {target}' replaces the other replicas")


def _show(bar: Progress, name: str, p: RolloutProgress) -> None:
    pods = " ".join(p.pods[:6]) + (f" +{len(p.pods) - 6}" if len(p.pods) > 6 else "")
    if p.phase == "waiting":
        text = f"{name}: waiting for {len(p.pods)} unavailable pod(s) ({pods})"
    elif p.phase == "done":
        text = f"{name}: done"
    else:
        text = f"{name}: batch {p.batch}/{max(p.batch, p.batches)} {p.phase} {pods}"
    bar.update(p.updated, text)


def render_plan(app: App, plan: RolloutPlan) -> None:
    from ant.cli.terminal import Column
    from ant.jobs.rollout import format_indexes

    term = app.terminal
    term.line(
        f"job {plan.job} ({plan.namespace}): {plan.replicas} replica(s), update revision "
        f"{plan.target_revision}"
    )
    scope = (
        "all replicas"
        if len(plan.selected) == plan.replicas
        else (f"replicas {format_indexes(plan.selected)}")
    )
    term.line(
        f"{scope}: {plan.updated}/{len(plan.selected)} Ready on it, "
        f"{len(plan.to_replace)} to replace, {plan.limit_text}"
    )
    if plan.unavailable:
        listed = "; ".join(f"{p.name}: {p.why()}" for p in plan.unavailable[:5])
        more = f" (+{len(plan.unavailable) - 5} more)" if len(plan.unavailable) > 5 else ""
        term.line(f"unavailable now: {len(plan.unavailable)}: {listed}{more}")
    if not plan.now and plan.batches:
        term.line("the first batch waits for unavailable pods to recover")
    if plan.blocked:
        term.line(f"blocked: {plan.blocked}")
    if not plan.batches:
        term.line("nothing to replace" if plan.complete else "nothing to replace; waiting for pods")
        return
    term.line()
    term.table(
        [Column("BATCH", justify="right"), Column("PODS", justify="right"), Column("REPLICAS")],
        [
            [str(i), str(len(batch)), " ".join(str(p.index) for p in batch)]
            for i, batch in enumerate(plan.batches, 1)
        ],
    )


@rollout.command("status", help=STATUS_HELP, short_help="Show a job's revisions and rollout state.")
def status(
    ctx: typer.Context,
    job: JobOrStatefulSet,
    output: Annotated[OutputFormat | None, output_option(OutputFormat.json)] = None,
) -> None:
    from ant.jobs import documents
    from ant.jobs import rollout as ro

    app: App = ctx.obj
    app, job = locate(app, job)
    found = ro.status(app.client, app.namespace, job)
    if output is OutputFormat.json:
        app.terminal.json(documents.rollout_status(found))
        return
    render_status(app, found)


STATE_STYLES = {"Complete": "green", "Progressing": "cyan", "Paused": "red", "Pending": "yellow"}


def render_status(app: App, st: RolloutStatus) -> None:
    from ant.cli.terminal import Column
    from ant.jobs.rollout import format_indexes

    term = app.terminal
    fields = [
        ("Job", f"{st.name} ({st.namespace}), {st.replicas} replica(s)"),
        ("Update revision", f"{st.update_revision} ({st.updated}/{st.replicas} Ready on it)"),
    ]
    if st.started_at:
        ran = f"to {st.target_revision}, started {st.started_at}"
        fields.append(
            ("Last rollout", ran + (f", finished {st.finished_at}" if st.finished_at else ""))
        )
    if st.last_update:
        changes = ", ".join(str(c) for c in st.last_update.get("changes") or [])
        fields.append(
            (
                "Last update",
                f"{st.last_update.get('at', '?')} by {st.last_update.get('by', '?')}: {changes}",
            )
        )
    width = max(len(k) for k, _ in [*fields, ("State", "")]) + 2
    for key, value in fields:
        term.line(f"{key + ':':<{width}}{value}")
    state = f"{'State:':<{width}}{st.state}: {st.message}"
    term.styled(state, STATE_STYLES.get(st.state, ""))
    term.line()
    term.table(
        [
            Column("REVISION"),
            Column("NUMBER", justify="right"),
            Column("PODS", justify="right"),
            Column("READY", justify="right"),
            Column("REPLICAS"),
        ],
        [
            [
                rev.name + (" (update)" if rev.update else ""),
                str(rev.number) if rev.number is not None else "-",
                str(len(rev.indexes)),
                str(rev.ready),
                format_indexes(rev.indexes) or "-",
            ]
            for rev in st.revisions
        ],
    )
    if not st.unavailable:
        return
    term.line()
    term.line(f"Unavailable: {len(st.unavailable)}")
    term.table(
        [Column("REPLICA", justify="right"), Column("POD"), Column("REVISION"), Column("REASON")],
        [[str(p.index), p.name, p.revision or "-", p.why()] for p in st.unavailable],
    )
