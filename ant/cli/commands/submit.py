from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import OutputFormat, output_option

HELP = """Submit a job: a headless Service and a StatefulSet of the same name.

FILE is an optional YAML job spec (see docs/cli.md); flags override it. The job's
command follows `--`:  ant submit --image python:3.12 --tpus 4 -- python train.py"""


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
        str | None, typer.Option("--priority", help="opportunistic | normal | high.")
    ] = None,
    tpus: Annotated[int | None, typer.Option("--tpus", help="google.com/tpu per pod.")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="nvidia.com/gpu per pod.")] = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", help="NAME=QTY per pod (repeatable).")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="K=V (repeatable).")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="K=V selectable label (repeatable).")
    ] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="K=V free-form annotation (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the manifests; contact no cluster.")
    ] = False,
    output: Annotated[
        OutputFormat | None,
        output_option(OutputFormat.name, OutputFormat.json, OutputFormat.yaml),
    ] = None,
) -> None:
    from ant.jobs import manifest
    from ant.jobs import spec as jobspec
    from ant.jobs.identity import Identity, whoami
    from ant.jobs.lifecycle import submit as create_job
    from ant.jobs.model import job_from

    app: App = ctx.obj
    base = jobspec.load_file(file) if file else jobspec.JobSpec()
    resources = {
        **manifest.accelerator_resources(tpus, gpus),
        **jobspec.parse_pairs(resource or [], "--resource"),
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
        env=jobspec.parse_pairs(env or [], "--env") or None,
        labels=jobspec.parse_pairs(label or [], "--label") or None,
        meta=jobspec.parse_pairs(meta or [], "--meta") or None,
    )
    if name and base.generate_name:
        job = job.with_overrides(generate_name="")
    jobspec.validate(job)

    # --dry-run contacts no cluster: the submitter is the local user, marked as such.
    identity = (
        Identity(username=app.env.vars.get("USER", "unknown")) if dry_run else whoami(app.client)
    )
    namespace = app.offline_namespace if dry_run else app.namespace
    provenance = manifest.Provenance(
        identity=identity,
        submitted_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command_line=shlex.join(["ant", *app.env.argv]),
        git=manifest.git_info(app.env.cwd),
    )
    manifests = manifest.build(job, manifest.job_name(job), namespace, provenance)
    if dry_run:
        from ant.jobs.lifecycle import to_messages

        to_messages(manifests)  # the same client-side checks as a real submit
        document = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [manifests.service, manifests.statefulset],
        }
        if output is OutputFormat.json:
            app.terminal.json(document)
        else:
            app.terminal.yaml(document)
        return

    with app.terminal.status(f"submitting {manifests.name}"):
        created = create_job(app.client, manifests, job.priority)
    if output is OutputFormat.name:
        app.terminal.line(manifests.name)
    elif output in (OutputFormat.json, OutputFormat.yaml):
        from ant.cli.views import API_VERSION

        document = {"apiVersion": API_VERSION, "kind": "Job", **job_from(created, []).to_json()}
        (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)
    else:
        app.terminal.line(
            f"job/{manifests.name} submitted to {namespace}: {job.replicas} replica(s), "
            f"priority {job.priority}"
        )
