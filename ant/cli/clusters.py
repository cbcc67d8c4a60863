"""Several clusters, no central record: which ones a command works across, asking them
all at once, and finding a job among them (docs/clusters.md).

A cluster is a kubeconfig context. ``--clusters a,b`` (``ANT_CLUSTERS``, the config
file's ``clusters``) names them; ``--all-clusters`` means every context ``ANT_CLUSTERS``
names, else those of the config file, else every context of the kubeconfig. Each is
read with its own namespace and cache (``App.for_cluster``), in a thread of its own with
its own deadline (``ANT_CLUSTER_TIMEOUT``): one that does not answer in time is reported,
never waited for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ant.errors import AntError, ConfigError, NotFoundError, PartialAnswer, UsageError

if TYPE_CHECKING:
    from ant.cli.context import App
    from ant.jobs.model import Job

T = TypeVar("T")
J = TypeVar("J", bound="Job")

DEFAULT_CLUSTER_TIMEOUT = 10.0  # seconds; docs/clusters.md says so


def parse_job_ref(text: str) -> tuple[str | None, str]:
    """``CLUSTER/JOB`` -> (CLUSTER, JOB); ``JOB`` -> (None, JOB). The one parser of a job
    argument's cluster part. A job name has no ``/``, a context name may (EKS's do): the
    job is after the last ``/``; ``statefulset/NAME`` (and ``CLUSTER/statefulset/NAME``)
    stay targets for ``ant.jobs.rollout.parse_target``."""
    from ant.jobs.rollout.options import STATEFULSET_KINDS

    prefix, slash, job = text.rpartition("/")
    if not slash:
        return None, text
    before, _, last = prefix.rpartition("/")
    if last.lower() in STATEFULSET_KINDS:
        return before or None, f"{last}/{job}"
    return prefix, job


def checked_ref(app: App, text: str) -> tuple[str | None, str]:
    """``parse_job_ref``, and a named cluster must be a context of the kubeconfig."""
    cluster, job = parse_job_ref(text)
    if cluster is not None and cluster not in app.kubeconfig_contexts:
        raise UsageError(
            f"{text!r} is not a job name nor CLUSTER/JOB: no context {cluster!r} in the kubeconfig",
            hint="'kubectl config get-contexts' lists them",
        )
    return cluster, job


def selected(app: App) -> list[str]:
    """The contexts this command works across; [] when it works on one cluster as always."""
    options = app.options
    if options.all_clusters:
        named = _names(app.env.vars.get("ANT_CLUSTERS", "")) or app.settings.clusters()
        return named or list(app.kubeconfig_contexts)
    return _names(options.clusters or "")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def cluster_timeout(app: App) -> float:
    from ant.jobs.durations import parse_duration

    text = app.env.vars.get("ANT_CLUSTER_TIMEOUT", "")
    if not text:
        return min(DEFAULT_CLUSTER_TIMEOUT, app.deadline_seconds)
    seconds = parse_duration(text, "ANT_CLUSTER_TIMEOUT")
    if seconds <= 0:
        raise UsageError(
            f"ANT_CLUSTER_TIMEOUT={text!r} is not a positive duration", hint="e.g. 10s"
        )
    return seconds


@dataclass(frozen=True)
class Answer(Generic[T]):
    """One cluster's answer: its value, or why there is none."""

    cluster: str
    value: T | None = None
    error: str | None = None
    absent: bool = False  # the cluster answered: what was asked for is not there


def ask_each(app: App, clusters: Sequence[str], work: Callable[[App], T]) -> list[Answer[T]]:
    """``work`` on every cluster at once; the wall time is the slowest's, at most the
    per-cluster timeout. Answers come back in the order of ``clusters``."""
    unknown = [n for n in clusters if n not in app.kubeconfig_contexts]
    if unknown:
        known = ", ".join(app.kubeconfig_contexts) or "none"
        raise ConfigError(
            f"no context {', '.join(map(repr, unknown))} in the kubeconfig (known: {known})",
            hint="--clusters and ANT_CLUSTERS name kubeconfig contexts",
        )
    timeout = cluster_timeout(app)
    answers: dict[str, Answer[T]] = {}
    unexpected: list[BaseException] = []

    def run(name: str) -> None:
        try:
            answers[name] = Answer(name, value=work(app.for_cluster(name, timeout)))
        except NotFoundError as e:
            answers[name] = Answer(name, error=str(e), absent=True)
        except AntError as e:
            answers[name] = Answer(name, error=str(e))
        except Exception as e:  # a bug: raised in the caller's thread below
            unexpected.append(e)

    # Daemon threads: a cluster that never answers must not hold the process at exit.
    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in clusters]
    for thread in threads:
        thread.start()
    end = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    if unexpected:
        raise unexpected[0]
    late = f"no answer within {timeout:g}s (ANT_CLUSTER_TIMEOUT)"
    return [answers.get(n) or Answer(n, error=late) for n in clusters]


def check_complete(answers: Sequence[Answer[Any]]) -> None:
    """After showing what came back: exit PARTIAL naming the clusters that did not answer."""
    missing = [a for a in answers if a.error is not None]
    if missing:
        why = "; ".join(f"{a.cluster}: {a.error}" for a in missing)
        raise PartialAnswer(
            f"partial answer: no answer from {', '.join(a.cluster for a in missing)} ({why})",
            hint="the other clusters' answers are shown; ANT_CLUSTER_TIMEOUT sets the wait",
        )


def locate(app: App, ref: str) -> tuple[App, str]:
    """The app of the cluster that holds job ``ref`` (``CLUSTER/JOB`` or a bare name), and
    the job without its cluster. A bare name with clusters selected is looked up in each:
    it must be in exactly one."""
    cluster, job = checked_ref(app, ref)
    if cluster is not None:
        return app.for_cluster(cluster, app.deadline_seconds), job
    clusters = selected(app)
    if not clusters:
        return app, job

    def find(on: App) -> None:
        from ant.jobs.lifecycle import get_statefulset
        from ant.jobs.rollout.options import parse_target

        name, any_statefulset = parse_target(job)
        get_statefulset(on.reader, on.namespace, name, any_owner=any_statefulset)

    answers = ask_each(app, clusters, find)
    found = [a for a in answers if a.error is None]
    if len(found) == 1:
        return app.for_cluster(found[0].cluster, app.deadline_seconds), job
    if len(found) > 1:
        where = ", ".join(f"{a.cluster}/{job}" for a in found)
        raise UsageError(
            f"job {job!r} exists in {len(found)} clusters: {where}", hint="name one: CLUSTER/JOB"
        )
    unanswered = [a.cluster for a in answers if not a.absent]
    if unanswered:
        raise PartialAnswer(
            f"job {job!r} not found in the clusters that answered; "
            f"no answer from {', '.join(unanswered)}",
            hint="try again, or name the cluster: CLUSTER/JOB",
        )
    raise NotFoundError(f"job {job!r} not found in {', '.join(clusters)}")


def locate_all(app: App, refs: Sequence[str]) -> tuple[App, list[str]]:
    """``locate`` for several jobs: they must all be in one cluster (delete, wait)."""
    located = [locate(app, ref) for ref in refs]
    if len({on.options.context for on, _ in located}) > 1:
        where = ", ".join(f"{on.options.context}/{name}" for on, name in located)
        raise UsageError(f"the jobs are in different clusters: {where}", hint="one at a time")
    return (located[0][0] if located else app), [name for _, name in located]


def with_cluster(jobs: Sequence[J], cluster: str) -> list[J]:
    """Jobs tagged with the cluster they came from (their ``cluster`` field); those
    built with it already (the cache's rows) are kept as they are."""
    return [job if job.cluster == cluster else job.in_cluster(cluster) for job in jobs]
