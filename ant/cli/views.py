"""How jobs look on screen: rows, columns and text (``-o json`` is ant.jobs.documents)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

from ant.cli.terminal import STATUS_STYLES, Column, Terminal, visible
from ant.jobs.documents import rfc3339, submitted_at

if TYPE_CHECKING:
    from ant.jobs.admission import Admission
    from ant.jobs.capacity import Capacity, Usage
    from ant.jobs.lifecycle import Event
    from ant.jobs.model import Job
    from ant.jobs.queue import Queue, Waiting
    from ant.jobs.template import Container, PodTemplate


def age(t: datetime | None, now: datetime | None = None) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    if t is None:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - t).total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 7200:  # 90m, not 1h
        return f"{seconds // 3600}h"
    if seconds >= 120:
        return f"{seconds // 60}m"
    return f"{max(seconds, 0)}s"


def render_job_table(
    terminal: Terminal,
    jobs: Sequence[Job],
    *,
    wide: bool,
    namespaces: bool,
    meta_columns: Sequence[str] = (),
    clusters: bool = False,
    unanswered: Mapping[str, str] | None = None,
) -> None:
    """``meta_columns``: meta keys shown as columns of their own (a sweep's parameters);
    ``clusters``: a CLUSTER column first (jobs read from several clusters), and a row
    for each cluster that did not answer (``unanswered``: why)."""
    columns = [Column("NAME"), Column("USER"), Column("STATUS", styles=STATUS_STYLES)]
    columns += [Column("READY", justify="right"), Column("PRIORITY"), Column("AGE")]
    columns += [Column(k.upper()) for k in meta_columns]
    if namespaces:
        columns.insert(0, Column("NAMESPACE"))
    if clusters:
        columns.insert(0, Column("CLUSTER"))
    if wide:
        columns += [Column("REVISION", justify="right"), Column("NODES", justify="right")]
        columns += [Column("PREEMPTED", justify="right"), Column("DESCRIPTION")]
    now = datetime.now(UTC)
    rows = []
    for j in jobs:
        ready = f"{j.ready}/{j.replicas}"
        row = [j.name, j.user_full or j.user, j.status, ready, j.priority, age(j.created_at, now)]
        if meta_columns:
            row += [j.meta.get(k, "-") for k in meta_columns]
        if namespaces:
            row.insert(0, j.namespace)
        if clusters:
            row.insert(0, j.cluster)
        if wide:
            row += [f"{j.updated}/{j.replicas}", str(j.nodes), _preempted(j, now)]
            row += [_one_line(j.description, 60)]
        rows.append(row)
    for cluster in unanswered or {}:  # why: on stderr (ant.cli.clusters.check_complete)
        rows.append([cluster, "(no answer)"] + ["-"] * (len(columns) - 2))
    terminal.table(columns, rows)


def render_job_details(
    terminal: Terminal, job: Job, events: Sequence[Event], admitted: Admission | None = None
) -> None:
    now = datetime.now(UTC)
    fields = [
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("User", job.user_full or job.user),
        ("Status", job.status.value),
        ("Priority", job.priority),
        ("Replicas", f"{job.replicas} ({job.ready} ready, {job.pending} pending)"),
        ("Revision", _revisions(job)),
        ("Created", f"{_timestamp(job.created_at)} ({age(job.created_at, now)} ago)"),
    ]
    if job.cluster:
        fields.insert(0, ("Cluster", job.cluster))
    if job.gang:
        fields.append(("Gang", _gang(job, admitted, now)))
    if job.preemptions:
        last = job.last_preempted_at
        when = f", last at {_timestamp(last)} ({age(last, now)} ago)" if last else ""
        fields.append(("Preempted", f"{job.preemptions} time(s){when}"))
    if job.sweep:
        index = job.annotations.get("ant.dev/sweep-index", "?")
        fields.append(("Sweep", f"{job.sweep} (job {index})"))
    if job.description:
        fields.append(("Description", job.description))
    for key in ("ant.dev/submitted-at", "ant.dev/command-line", "ant.dev/git-commit"):
        if key in job.annotations:
            label = key.removeprefix("ant.dev/").replace("-", " ").capitalize()
            fields.append((label, job.annotations[key]))
    fields += _ending_fields(job, now)
    fields += [(f"Label {k}", v) for k, v in sorted(job.labels.items())]
    fields += [(f"Meta {k}", v) for k, v in sorted(job.meta.items())]
    width = max(len(k) for k, _ in fields) + 2
    for key, value in fields:
        terminal.line(visible(f"{key + ':':<{width}}{value}"))  # one line per field
    if job.template is not None:
        terminal.line()
        for line in _template_lines(job, job.template):
            terminal.line(visible(line))

    terminal.line()
    terminal.table(
        [
            Column("REPLICA", justify="right"),
            Column("POD"),
            Column("PHASE"),
            Column("READY"),
            Column("NODE"),
            Column("RESTARTS", justify="right"),
            Column("EXIT", justify="right"),
            Column("REVISION"),
            Column("AGE"),
            Column("REASON"),
        ],
        [
            [
                str(p.index),
                p.pod,
                p.phase,
                "yes" if p.ready else "no",
                p.node or "-",
                str(p.restarts),
                "-" if p.exit_code is None else str(p.exit_code),
                p.revision.removeprefix(f"{job.name}-") or "-",
                age(p.created_at, now),
                _one_line(p.reason + (f": {p.message}" if p.message else ""), 70),
            ]
            for p in job.pods
        ],
    )
    terminal.line()
    if not events:
        terminal.line("Events: none")
        return
    terminal.line("Events:")
    terminal.table(
        [Column("TIME"), Column("TYPE"), Column("REASON"), Column("OBJECT"), Column("MESSAGE")],
        [[e.time, e.type, e.reason, e.object, _one_line(e.message, 90)] for e in events],
    )


def _ending_fields(job: Job, now: datetime) -> list[tuple[str, str]]:
    """How the job ends (docs/controller.md): policy, restarts, exits, dependencies, TTL."""
    from ant.jobs.durations import format_duration
    from ant.jobs.model import parse_time

    policy, record = job.policy, job.record
    fields = [
        ("On failure", f"{policy.on_failure}, at most {policy.max_restarts} restart(s)"),
        ("Restarts", str(record.restarts)),
    ]
    fields += [
        (f"Restart {len(record.restart_log) - i}", f"{r.at} {r.reason}")
        for i, r in enumerate(reversed(record.restart_log))
    ]
    if policy.after:
        state = f"released at {record.released_at}" if record.released_at else "waiting"
        fields.append(("After", f"{', '.join(policy.after)} ({state})"))
    if record.exits:
        codes = ", ".join(f"{i}={e.exit_code}" for i, e in sorted(record.exits.items()))
        fields.append(("Exit codes", codes))
    if record.failure:
        fields.append(("Failure", record.failure))
    ttl = format_duration(policy.ttl_seconds)
    finished = parse_time(record.finished_at)
    if finished is None:
        fields.append(("TTL", f"{ttl} after it finishes"))
    else:
        fields.append(("Finished", f"{_timestamp(finished)} ({age(finished, now)} ago)"))
        expires = finished + timedelta(seconds=policy.ttl_seconds)
        fields.append(("TTL", f"{ttl}: deleted at {_timestamp(expires)}"))
    return fields


def _gang(job: Job, a: Admission | None, now: datetime) -> str:
    """The Gang line of ``ant show``: the engine, and when it admitted the job or why not."""
    if a is None:
        return f"{job.gang} (its state cannot be read)"
    where = f", queue {a.queue}" if a.queue else ""
    where += f" (ClusterQueue {a.cluster_queue})" if a.cluster_queue else ""
    if a.admitted:
        return f"{a.engine.value}{where}, admitted {_timestamp(a.at)} ({age(a.at, now)} ago)"
    position = f", position {a.position}" if a.position else ""
    return f"{a.engine.value}{where}{position}, waiting: {_one_line(a.reason, 200)}"


def _timestamp(t: datetime | None) -> str:
    return rfc3339(t) if t else "-"


def _revisions(job: Job) -> str:
    current = job.current_revision
    same = not current or current == job.update_revision
    return f"{job.updated}/{job.replicas} on {job.update_revision or '-'}" + (
        "" if same else f" (current revision {current})"
    )


def _template_lines(job: Job, template: PodTemplate) -> list[str]:
    """What the pods run: the pod template (what every new pod gets), and where running
    pods still run another image."""
    lines = [f"Pod template (revision {job.update_revision or '-'}, what new pods get):"]
    for c in template.containers:
        lines.append(f"  {'Init container' if c.init else 'Container'} {c.name}")
        lines += [
            f"    {key + ':' if key else '':<10}{value}" for key, value in _container_fields(job, c)
        ]
    if template.volumes:
        lines.append("  Volumes")
        lines += [
            f"    {v.name}: {' '.join(x for x in (v.kind, v.source) if x)}"
            for v in template.volumes
        ]
    if template.node_selector:
        selector = ", ".join(f"{k}={v}" for k, v in sorted(template.node_selector.items()))
        lines.append(f"  Node selector: {selector}")
    return lines


def _container_fields(job: Job, c: Container) -> list[tuple[str, str]]:
    import shlex

    fields = [("Image", c.image)]
    others: dict[str, list[int]] = {}
    for p in job.pods:
        image = p.images.get(c.name)
        if image is not None and image != c.image:
            others.setdefault(image, []).append(p.index)
    fields += [
        ("", f"replica(s) {', '.join(map(str, idx))} still run {image}")
        for image, idx in sorted(others.items())
    ]
    if c.command or c.args:
        fields.append(("Command", shlex.join([*c.command, *c.args])))
    if c.requests:
        fields.append(("Requests", ", ".join(f"{k}={v}" for k, v in c.requests.items())))
    if c.limits:
        fields.append(("Limits", ", ".join(f"{k}={v}" for k, v in c.limits.items())))
    env = [
        f"{e.name}={e.value}" if e.value_from is None else f"{e.name} from {e.value_from}"
        for e in c.env
    ]
    env += [f"all of {source}" for source in c.env_from]
    fields += [("Env" if i == 0 else "", text) for i, text in enumerate(env)]
    mounts = [
        f"{m.path} from {m.volume}"
        + (f" ({m.sub_path})" if m.sub_path else "")
        + (" (read-only)" if m.read_only else "")
        for m in c.mounts
    ]
    fields += [("Mounts" if i == 0 else "", text) for i, text in enumerate(mounts)]
    return fields


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _preempted(job: Job, now: datetime) -> str:
    """The PREEMPTED cell: how many times, and how long ago the last one was."""
    last = job.last_preempted_at
    if not job.preemptions or last is None:
        return str(job.preemptions)
    return f"{job.preemptions} ({age(last, now)} ago)"


def _free_line(c: Capacity, usage: Usage, scope: str) -> str:
    """What is free in the whole cluster, and how ant knows; or that it does not."""
    if c.cluster_free is not None and c.cluster_requested is not None:
        source = "the pods of every namespace" if usage.source == "cluster" else "the ant cache"
        return (
            f"{c.resource}: {_quantity(c.cluster_free)} free in the cluster "
            f"({_quantity(c.cluster_requested)} requested by running pods; from {source})"
        )
    if c.free is not None:
        return f"{c.resource}: 0 free (the running pods in {scope} take all of it)"
    at_most = _quantity(c.allocatable - c.running)
    return f"{c.resource}: free unknown ({usage.why_unknown}); at most {at_most}"


# ---- ant queue ---------------------------------------------------------------------------
QUEUE_STATUS_STYLES = {"Pending": "yellow", "Partial": "bold red", "Queued": "cyan"}


def _quantity(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def _requests(w: Waiting, resources: Sequence[str]) -> str:
    shown = [k for k in resources if k in w.requests] or sorted(w.requests)[:2]
    return ",".join(f"{k}={_quantity(w.requests[k])}" for k in shown) or "-"


def render_queue(terminal: Terminal, queue: Queue, *, wide: bool) -> None:
    now = queue.now
    namespaces = queue.namespace is None
    resources = [c.resource for c in queue.capacity]
    if queue.items:
        columns = [Column("#", justify="right"), Column("NAME"), Column("USER")]
        columns += [Column("PRIORITY"), Column("STATUS", styles=QUEUE_STATUS_STYLES)]
        columns += [Column("PENDING", justify="right"), Column("PER POD"), Column("WAITING")]
        if namespaces:
            columns.insert(1, Column("NAMESPACE"))
        if wide:
            columns += [Column("SUBMITTED"), Column("PREEMPTED", justify="right")]
            columns.append(Column("KUEUE #", justify="right"))
        columns.append(Column("REASON"))
        rows = []
        for w in queue.items:
            row = [str(w.position), w.job.name, w.job.user_full or w.job.user]
            row += [w.job.priority or str(w.priority_value), w.status]
            row += [f"{w.pending}/{w.replicas}", _requests(w, resources)]
            row.append(age(w.waiting_since, now))
            if namespaces:
                row.insert(1, w.job.namespace)
            if wide:
                row += [submitted_at(w.job) or "-", _preempted(w.job, now)]
                row.append(str(w.kueue_position) if w.kueue_position else "-")
            if wide:
                full = f"{w.reason}: {w.message}" if w.message else w.reason
                row.append(" ".join(full.split()) or "-")
            else:  # the scheduler's message says it all; DRA's aside is noise here
                brief = w.message.replace("no new claims to deallocate, ", "") or w.reason
                row.append(_one_line(brief, 120) or "-")
            rows.append(row)
        terminal.table(columns, rows)
    else:
        where = "in every namespace" if namespaces else f"in {queue.namespace}"
        terminal.info(f"no jobs waiting {where}")
    if not queue.nodes_visible:
        terminal.info("capacity unknown: you cannot list nodes")
        return
    scope = "all namespaces" if namespaces else f"namespace {queue.namespace}"
    for c in queue.capacity:
        terminal.line(
            f"{c.resource}: {_quantity(c.allocatable)} allocatable on {c.nodes} node(s); "
            f"requested by running pods {_quantity(c.running)}, "
            f"by pending pods {_quantity(c.pending)} (pods in {scope})"
        )
        terminal.line(_free_line(c, queue.usage, scope))
    for q in queue.quotas:
        terminal.line(
            f"Kueue ClusterQueue {q.cluster_queue}, flavor {q.flavor}: {q.resource} "
            f"{_quantity(q.reserved)} of {_quantity(q.nominal)} reserved, "
            f"{_quantity(q.free)} free"
        )
    partial = [w for w in queue.items if w.partial]
    for c in queue.capacity:
        holders = [w for w in partial if w.held(c.resource)]
        if holders:
            idle = sum((w.held(c.resource) for w in holders), start=Fraction(0))
            names = ", ".join(w.job.name for w in holders)
            verb = "holds" if len(holders) == 1 else "hold"
            terminal.line(
                f"partially scheduled: {names} {verb} {_quantity(idle)} {c.resource} "
                "idle until all their pods are scheduled"
            )
