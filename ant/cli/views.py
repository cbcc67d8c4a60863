"""How jobs look on screen and in ``-o json``: rows, columns and documents, in one place."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ant.cli.terminal import STATUS_STYLES, Column, Terminal
from ant.errors import ValidationError

if TYPE_CHECKING:
    from ant.jobs.lifecycle import Event
    from ant.jobs.model import Job

API_VERSION = "ant.dev/v1"
_DURATION = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, flag: str) -> int:
    """``90s``, ``15m``, ``24h``, ``7d``, ``1h30m`` -> seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValidationError(flag, f"{text!r} is not a duration", hint="e.g. 30s, 15m, 24h, 7d")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def age(t: datetime | None, now: datetime | None = None) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    if t is None:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - t).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def job_list_document(jobs: Sequence[Job]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "JobList", "items": [j.to_json() for j in jobs]}


def render_job_table(
    terminal: Terminal, jobs: Sequence[Job], *, wide: bool, namespaces: bool
) -> None:
    columns = [Column("NAME"), Column("USER"), Column("STATUS", styles=STATUS_STYLES)]
    columns += [Column("READY", justify="right"), Column("PRIORITY"), Column("AGE")]
    if namespaces:
        columns.insert(0, Column("NAMESPACE"))
    if wide:
        columns += [Column("REVISION", justify="right"), Column("NODES", justify="right")]
        columns += [Column("PREEMPTED", justify="right"), Column("DESCRIPTION")]
    now = datetime.now(UTC)
    rows = []
    for j in jobs:
        row = [j.name, j.user_full or j.user, j.status.value, f"{j.ready}/{j.replicas}"]
        row += [j.priority, age(j.created_at, now)]
        if namespaces:
            row.insert(0, j.namespace)
        if wide:
            row += [f"{j.updated}/{j.replicas}", str(j.nodes), str(j.preemptions)]
            row += [_one_line(j.description, 60)]
        rows.append(row)
    terminal.table(columns, rows)


def job_document(job: Job, events: Sequence[Event]) -> dict[str, Any]:
    """``ant show -o json``."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        **job.to_json(),
        "updateRevision": job.update_revision,
        "currentRevision": job.current_revision,
        "preemptions": job.preemptions,
        "annotations": dict(job.annotations),
        "pods": [
            {
                "index": p.index,
                "name": p.pod,
                "phase": p.phase,
                "ready": p.ready,
                "node": p.node,
                "restarts": p.restarts,
                "revision": p.revision,
                "createdAt": p.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if p.created_at else None,
                "reason": p.reason,
                "message": p.message,
            }
            for p in job.pods
        ],
        "events": [
            {
                "time": e.time,
                "type": e.type,
                "reason": e.reason,
                "object": e.object,
                "message": e.message,
                "count": e.count,
            }
            for e in events
        ],
    }


def render_job_details(terminal: Terminal, job: Job, events: Sequence[Event]) -> None:
    now = datetime.now(UTC)
    fields = [
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("User", job.user_full or job.user),
        ("Status", job.status.value),
        ("Priority", job.priority),
        ("Replicas", f"{job.replicas} ({job.ready} ready, {job.pending} pending)"),
        ("Revision", f"{job.updated}/{job.replicas} on {job.update_revision or '-'}"),
        ("Created", f"{_timestamp(job.created_at)} ({age(job.created_at, now)} ago)"),
    ]
    if job.preemptions:
        fields.append(("Preempted", f"{job.preemptions} time(s)"))
    if job.description:
        fields.append(("Description", job.description))
    for key in ("ant.dev/submitted-at", "ant.dev/command-line", "ant.dev/git-commit"):
        if key in job.annotations:
            label = key.removeprefix("ant.dev/").replace("-", " ").capitalize()
            fields.append((label, job.annotations[key]))
    fields += [(f"Label {k}", v) for k, v in sorted(job.labels.items())]
    fields += [(f"Meta {k}", v) for k, v in sorted(job.meta.items())]
    width = max(len(k) for k, _ in fields) + 2
    for key, value in fields:
        terminal.line(f"{key + ':':<{width}}{value}")

    terminal.line()
    terminal.table(
        [
            Column("REPLICA", justify="right"),
            Column("POD"),
            Column("PHASE"),
            Column("READY"),
            Column("NODE"),
            Column("RESTARTS", justify="right"),
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


def _timestamp(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
