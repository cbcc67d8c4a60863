from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ant.cli.completion import complete_on_failure, complete_priority
from ant.cli.context import App
from ant.cli.options import OutputFormat, output_option

if TYPE_CHECKING:
    from ant.jobs.gang import Gang
    from ant.jobs.manifest import Manifests, Provenance
    from ant.jobs.spec import JobSpec
    from ant.jobs.sweep import Parameter, Sweep

HELP = """Submit a job: a headless Service and a StatefulSet of the same name.

FILE is an optional YAML job spec (see docs/cli.md); flags override it. The job's
command follows `--`:  ant submit --image python:3.12 --tpus 4 -- python train.py

A sweep submits many jobs at once: --sweep lr=1e-3,3e-4 --sweep bs=32,64 makes one job
per combination (labelled ant.dev/sweep=ID; see docs/queueing.md), --count N makes N."""


def submit(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(help="YAML job spec.", show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help="Job name.")] = None,
    generate_name: Annotated[
        str | None, typer.Option("--generate-name", help="Name prefix; ant adds 5 characters.")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="Container image.")] = None,
    replicas: Annotated[int | None, typer.Option("--replicas", help="Number of pods.")] = None,
    priority: Annotated[
        str | None,
        typer.Option(
            "--priority", help="opportunistic | normal | high.", autocompletion=complete_priority
        ),
    ] = None,
    tpus: Annotated[int | None, typer.Option("--tpus", help="google.com/tpu per pod.")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="nvidia.com/gpu per pod.")] = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", help="NAME=QTY per pod (repeatable).")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="K=V (repeatable).")] = None,
    env_file: Annotated[
        list[str] | None,
        typer.Option("--env-file", help="FILE of KEY=VALUE lines (repeatable); --env wins."),
    ] = None,
    secret_env: Annotated[
        list[str] | None,
        typer.Option("--secret-env", help="NAME=SECRET:KEY: env var from a Secret (repeatable)."),
    ] = None,
    secret_mount: Annotated[
        list[str] | None,
        typer.Option("--secret-mount", help="SECRET:/path, read-only (repeatable)."),
    ] = None,
    mount: Annotated[
        list[str] | None,
        typer.Option("--mount", help="PVC:/path[:ro] a PersistentVolumeClaim (repeatable)."),
    ] = None,
    config_map: Annotated[
        list[str] | None,
        typer.Option("--config-map", help="CONFIGMAP:/path, read-only (repeatable)."),
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="K=V selectable label (repeatable).")
    ] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="K=V free-form annotation (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="KEY=V1,V2,...: one job per value; repeated, the cross product (a sweep).",
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", help="N jobs (with --sweep: N per combination).")
    ] = None,
    max_restarts: Annotated[
        int | None,
        typer.Option("--max-restarts", help="Restarts a failure may cause, then Failed [3]."),
    ] = None,
    on_failure: Annotated[
        str | None,
        typer.Option(
            "--on-failure",
            help="restart-job | restart-replica | fail [restart-job].",
            autocompletion=complete_on_failure,
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", help="JOB[,JOB...]: start once these succeeded."),
    ] = None,
    ttl: Annotated[
        str | None,
        typer.Option("--ttl", help="Keep the finished job this long, e.g. 12h [7d]."),
    ] = None,
    no_gang: Annotated[
        bool,
        typer.Option("--no-gang", help="Let replicas start one by one (no gang admission)."),
    ] = False,
    min_replicas: Annotated[
        int | None,
        typer.Option("--min-replicas", help="PodGroup gang: replicas that must start together."),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option("--queue", help="Kueue LocalQueue to admit the job (env: ANT_QUEUE)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the manifests; contact no cluster.")
    ] = False,
    output: Annotated[
        OutputFormat | None,
        output_option(OutputFormat.name, OutputFormat.json, OutputFormat.yaml),
    ] = None,
) -> None:
    from ant.cli import clusters as across
    from ant.cli import placing
    from ant.jobs import data, durations, manifest
    from ant.jobs import spec as jobspec
    from ant.jobs.documents import submitted_job

    app: App = ctx.obj
    defaults = _config_defaults(app)  # the config file's: below the file and the flags
    base = _load_spec(file, app, defaults) if file else defaults
    resources = {
        **manifest.accelerator_resources(tpus, gpus),
        **jobspec.parse_pairs(resource or [], "--resource"),
    }
    environment = {
        **{
            k: v
            for path in env_file or []
            for k, v in data.parse_env_file(path, app.env.vars).items()
        },
        **jobspec.parse_pairs(env or [], "--env"),
    }
    job = base.with_overrides(
        name=name,
        generate_name=generate_name,
        image=image,
        replicas=replicas,
        priority=priority,
        description=description,
        command=app.env.trailing_command or None,
        resources=resources or None,
        env=environment or None,
        labels=jobspec.parse_pairs(label or [], "--label") or None,
        meta=jobspec.parse_pairs(meta or [], "--meta") or None,
        **data.parse_all(secret_env or [], secret_mount or [], mount or [], config_map or []),
        max_restarts=max_restarts,
        on_failure=on_failure,
        after=jobspec.parse_after(after, "--after") if after is not None else None,
        ttl_seconds=durations.parse_duration(ttl, "--ttl") if ttl is not None else None,
    )
    if name and base.generate_name:
        job = job.with_overrides(generate_name="")
    jobspec.validate(job)
    parameters, copies = None, 1 if count is None else count
    if sweep or count is not None:  # a sweep: checked in full before the cluster is asked
        from ant.jobs import sweep as sweeps

        parameters = sweeps.parse_parameters(sweep or [])
        sweeps.validate(job, parameters, copies)

    def unchecked(what: str) -> None:
        app.terminal.warn(f"cannot check that {what} exists (access denied); submitting anyway")

    def gang_on(on: App) -> Gang | None:
        return _gang(on, job, no_gang, min_replicas, queue, dry_run)

    placement = ""
    if clusters := across.selected(app):  # chosen by capacity (even dry runs)
        if parameters is not None:  # a sweep spreads over them
            _submit_spread_sweep(
                app, clusters, job, parameters, copies, gang_on, dry_run, output, unchecked
            )
            return
        app, placement = placing.place(app, clusters, job)

    namespace = app.offline_namespace if dry_run else app.namespace
    provenance = _provenance(app, dry_run, placement)
    gang = gang_on(app)
    if parameters is not None:
        _submit_sweep(
            app, job, parameters, copies, namespace, provenance, gang, dry_run, output, unchecked
        )
        return
    manifests = manifest.build(job, manifest.job_name(job), namespace, provenance, gang)
    if dry_run:
        from ant.jobs.submission import podgroup_message, to_messages

        to_messages(manifests)  # the same client-side checks as a real submit
        podgroup_message(manifests)
        _print_dry_run(app, [manifests], output)
        return

    with app.terminal.status(f"submitting {manifests.name}"), _forgetting_gone_engines(app):
        created = app.api.create(manifests, job.priority, on_unchecked=unchecked)
    app.record_write(created.resource_version)
    if output is OutputFormat.name:
        app.terminal.line(manifests.name)
    elif output in (OutputFormat.json, OutputFormat.yaml):
        document = submitted_job(created)
        (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)
    else:
        app.terminal.line(
            f"job/{manifests.name} submitted to {namespace}: {job.replicas} replica(s), "
            f"priority {job.priority}"
        )


def _provenance(app: App, dry_run: bool, placement: str) -> Provenance:
    """Who submits, when, from what: recorded on the job. --dry-run contacts no cluster:
    the submitter is then the local user, marked as such."""
    from ant.jobs import manifest
    from ant.jobs.documents import rfc3339
    from ant.jobs.identity import Identity, whoami

    identity = (
        Identity(username=app.env.vars.get("USER", "unknown")) if dry_run else whoami(app.client)
    )
    return manifest.Provenance(
        identity=identity,
        submitted_at=rfc3339(datetime.now(UTC)),
        command_line=shlex.join(["ant", *app.env.argv]),
        git=manifest.git_info(app.env.cwd),
        placement=placement,
    )


def _gang(
    app: App,
    job: JobSpec,
    no_gang: bool,
    min_replicas: int | None,
    queue: str | None,
    dry_run: bool,
) -> Gang | None:
    """The engine that admits the job whole (ant.jobs.gang), or None; says once when the
    job wanted a gang the cluster cannot give."""
    from ant.jobs import gang as gangs
    from ant.kube import resources as r

    # --no-gang overrides a default queue (ANT_QUEUE, else the config file's), not an
    # explicit --queue.
    default_queue = "" if no_gang else app.env.vars.get("ANT_QUEUE") or app.setting("queue") or ""
    request = gangs.GangRequest(
        enabled=not no_gang,
        min_replicas=min_replicas,
        queue=queue or job.labels.get(gangs.QUEUE_LABEL, "") or default_queue,
    )
    gangs.validate(request, job.replicas)
    # --dry-run contacts no cluster: it shows what a cluster that serves PodGroups gets.
    gang = gangs.choose(request, job.replicas, lambda: dry_run or app.discovery.serves(r.PODGROUPS))
    if gang is None and gangs.wants_gang(request, job.replicas):
        app.terminal.warn(
            "this cluster does not enforce gangs (it serves no scheduling.k8s.io/v1beta1 "
            "PodGroups; --queue uses Kueue): replicas may start one by one; "
            "--no-gang says that is fine"
        )
    return gang


@contextmanager
def _forgetting_gone_engines(app: App) -> Iterator[None]:
    """A cluster that stopped serving PodGroups: forget what discovery remembered."""
    from ant.errors import GangUnavailable
    from ant.kube import resources as r

    try:
        yield
    except GangUnavailable:
        app.discovery.forget(r.PODGROUPS)
        raise


def _submit_sweep(
    app: App,
    job: JobSpec,
    parameters: Sequence[Parameter],
    count: int,
    namespace: str,
    provenance: Provenance,
    gang: Gang | None,
    dry_run: bool,
    output: OutputFormat | None,
    on_unchecked: Callable[[str], None],
) -> None:
    """``--sweep``/``--count``: many jobs over one connection pool (ant.jobs.sweep)."""
    from ant.jobs import documents
    from ant.jobs import sweep as sweeps
    from ant.jobs.model import job_from

    plan = sweeps.plan(job, parameters, count, namespace, provenance, gang=gang)
    if dry_run:
        _check_offline(plan)
        _print_dry_run(app, [j.manifests for j in plan.jobs], output)
        return
    try:
        created = _create_sweep(app, plan, f"submitting sweep {plan.id}", on_unchecked)
    except sweeps.SweepFailed as e:
        for name in e.created:  # exactly the jobs that exist, one per line
            app.terminal.line(name)
        raise
    app.record_write(*(sts.metadata.resourceVersion for sts in created))
    if output is OutputFormat.name:
        for name in plan.names:
            app.terminal.line(name)
    elif output in (OutputFormat.json, OutputFormat.yaml):
        document = documents.sweep(plan, [job_from(sts, []) for sts in created])
        (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)
    else:
        varied = " x ".join(f"{p.key} ({len(p.values)})" for p in parameters)
        shape = varied + (f" x {count} each" if varied and count > 1 else "")
        app.terminal.line(
            f"sweep {plan.id}: {len(plan.jobs)} job(s) submitted to {namespace}"
            + (f" over {shape}" if shape else "")
            + f", priority {job.priority}"
        )
        app.terminal.info(f"see them with: ant list --sweep {plan.id}")


def _submit_spread_sweep(
    app: App,
    clusters: list[str],
    job: JobSpec,
    parameters: Sequence[Parameter],
    count: int,
    gang_on: Callable[[App], Gang | None],
    dry_run: bool,
    output: OutputFormat | None,
    on_unchecked: Callable[[str], None],
) -> None:
    """A sweep over several clusters: each job placed by the placement rule against what
    the jobs before it took (docs/clusters.md), then each cluster's part submitted as a
    sweep of its own under the one sweep id. A cluster that fails stops the rest; what was
    created is named, cluster by cluster."""
    from ant.cli import placing
    from ant.cli.clusters import with_cluster
    from ant.errors import AntError
    from ant.jobs import documents
    from ant.jobs import sweep as sweeps
    from ant.jobs.model import job_from

    total = len(sweeps.combinations(parameters, count))
    placed = placing.spread(app, clusters, job, total)
    sweep_id = sweeps.new_id()
    parts: list[tuple[str, App, Sweep]] = []
    for cluster in clusters:
        here = {i: f"{p.cluster}: {p.reason}" for i, p in enumerate(placed) if p.cluster == cluster}
        if here:
            on = app.for_cluster(cluster, app.deadline_seconds)
            namespace = on.offline_namespace if dry_run else on.namespace
            plan = sweeps.plan(
                job,
                parameters,
                count,
                namespace,
                _provenance(on, dry_run, ""),
                sweep_id=sweep_id,
                gang=gang_on(on),
                placements=here,
            )
            parts.append((cluster, on, plan))
    if dry_run:
        for _, _, plan in parts:
            _check_offline(plan)
        if output is OutputFormat.name:
            for cluster, _, plan in parts:
                for name in plan.names:
                    app.terminal.line(f"{cluster}/{name}")
            return
        _print_dry_run(app, [j.manifests for _, _, plan in parts for j in plan.jobs], output)
        return
    done: list[tuple[str, Sweep, list[Any]]] = []
    for cluster, on, plan in parts:
        try:
            created = _create_sweep(on, plan, f"submitting to {cluster}", on_unchecked)
        except sweeps.SweepFailed as e:
            made = [f"{c}/{s.metadata.name}" for c, _, sts in done for s in sts]
            made += [f"{cluster}/{name}" for name in e.created]
            for name in made:  # exactly the jobs that exist, one per line
                app.terminal.line(name)
            failure = next(iter(e.failed.items()), None)
            what = f"{failure[0]} failed: {failure[1]}" if failure else "interrupted"
            error = AntError(
                f"sweep {sweep_id}: {len(made)} of {total} job(s) created, "
                f"then in {cluster} {what}",
                hint=f"'ant --clusters {','.join(clusters)} delete --sweep {sweep_id}' removes "
                "the created ones"
                if made
                else "nothing was created",
            )
            error.exit_code = e.exit_code
            raise error from e
        on.record_write(*(sts.metadata.resourceVersion for sts in created))
        done.append((cluster, plan, created))
    if output is OutputFormat.name:
        for cluster, plan, _ in done:
            for name in plan.names:
                app.terminal.line(f"{cluster}/{name}")
    elif output in (OutputFormat.json, OutputFormat.yaml):
        document = documents.sweep_across(
            [(plan, with_cluster([job_from(s, []) for s in sts], c)) for c, plan, sts in done]
        )
        (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)
    else:
        where = ", ".join(f"{c} ({len(plan.jobs)})" for c, plan, _ in done)
        app.terminal.line(
            f"sweep {sweep_id}: {total} job(s) submitted across {len(done)} cluster(s): "
            f"{where}, priority {job.priority}"
        )
        app.terminal.info(
            f"see them with: ant --clusters {','.join(clusters)} list --sweep {sweep_id}"
        )


def _check_offline(plan: Sweep) -> None:
    """--dry-run: the client-side checks a real submit makes of each job."""
    from ant.jobs.submission import podgroup_message, to_messages

    for planned in plan.jobs:
        to_messages(planned.manifests)
        podgroup_message(planned.manifests)


def _create_sweep(
    app: App, plan: Sweep, doing: str, on_unchecked: Callable[[str], None]
) -> list[Any]:
    """Every job of ``plan`` created in ``app``'s cluster, with a progress bar."""
    from ant.jobs import sweep as sweeps

    with app.terminal.progress(len(plan.jobs), doing) as progress, _forgetting_gone_engines(app):
        return sweeps.submit(
            app.client,
            plan,
            on_progress=progress.update if app.terminal.interactive else None,
            on_unchecked=on_unchecked,
        )


def _print_dry_run(app: App, jobs: list[Manifests], output: OutputFormat | None) -> None:
    """What --dry-run would create: the names (-o name), or the manifests as a List."""
    if output is OutputFormat.name:
        for m in jobs:
            app.terminal.line(m.name)
        return
    items = [obj for m in jobs for obj in m.objects]
    document = {"apiVersion": "v1", "kind": "List", "items": items}
    (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)


def _config_defaults(app: App) -> JobSpec:
    """A job spec of what the config file sets for submit (image, priority, resources)."""
    from ant.jobs import manifest
    from ant.jobs import spec as jobspec

    resources = dict(app.setting("resources") or {})
    tpus, gpus = resources.pop("tpus", None), resources.pop("gpus", None)
    return jobspec.JobSpec(
        image=app.setting("image") or "",
        priority=app.setting("priority") or jobspec.JobSpec.priority,
        resources={
            **manifest.accelerator_resources(
                int(tpus) if tpus is not None else None, int(gpus) if gpus is not None else None
            ),
            **resources,
        },
    )


def _load_spec(file: str, app: App, defaults: JobSpec) -> JobSpec:
    """The job spec FILE. One that does not exist, is not named like YAML, and comes with no
    command after ``--`` is most likely the job's command typed without ``--``."""
    import os.path

    from ant.errors import UsageError
    from ant.jobs import spec as jobspec

    try:
        return jobspec.load_file(file, defaults, app.env.vars)
    except UsageError as e:
        # os.path.exists: a name too long to stat does not exist (Path.exists raises).
        if app.env.trailing_command or os.path.exists(file) or file.endswith((".yaml", ".yml")):
            raise
        raise UsageError(
            e.message,
            hint=f"if '{file}' is the job's command, put it after '--': ant submit ... -- {file}",
        ) from e
