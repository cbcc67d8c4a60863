"""ant's Python API: jobs from notebooks and pipelines, over the domain code the CLI uses.

    import ant

    client = ant.Client(context="alice", namespace="research")
    job = client.submit(name="bert", image="ghcr.io/lab/train:1.4", replicas=4,
                        resources={"google.com/tpu": "4"}, command=["python", "train.py"])
    client.wait(job)
    for line in client.logs(job, follow=True):
        print(line)

Every method talks to the API server directly (no subprocess, no cache); errors are the
``ant.errors`` tree (``ant.AntError`` and its subclasses, with ``exit_code``). The CLI's
commands call this class too (``ant.cli.context.App.api``), so the two stay in step.
docs/python.md describes it.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ant.errors import UsageError
from ant.jobs import schema
from ant.jobs.model import Job

if TYPE_CHECKING:
    from ant.jobs.identity import Identity
    from ant.jobs.lifecycle import Event, LogOptions
    from ant.jobs.manifest import Manifests
    from ant.jobs.rollout import RolloutResult
    from ant.jobs.scope import Across
    from ant.jobs.spec import JobSpec
    from ant.kube.client import Client as KubeClient
    from ant.kube.stream import ExecResult

JobRef = str | Job  # a job's name, or a Job this client returned


class Client:
    """Jobs in one namespace of one cluster, as one user.

    ``context`` and ``kubeconfig`` pick the cluster and user as ``ant --context`` and
    ``--kubeconfig`` do (``KUBECONFIG``, then ``~/.kube/config``, or in-cluster);
    ``namespace`` defaults to the context's.
    """

    def __init__(
        self,
        context: str | None = None,
        namespace: str | None = None,
        *,
        kubeconfig: str | None = None,
    ) -> None:
        from ant.kube import config
        from ant.kube.client import Client as KubeClient
        from ant.kube.transport import Transport

        kc = config.load(kubeconfig, context, os.environ)
        self.namespace = namespace or kc.namespace
        schema.validate_namespace(self.namespace)
        self.kube: KubeClient = KubeClient(Transport.from_kubeconfig(kc))
        self.reader: KubeClient = self.kube
        self._identity: Callable[[], Identity] = self.whoami
        self._named: Callable[[], Sequence[str]] = lambda: config.context_namespaces(kc)

    @classmethod
    def over(
        cls,
        kube: KubeClient,
        namespace: str,
        *,
        reader: KubeClient | None = None,
        identity: Callable[[], Identity] | None = None,
        named: Callable[[], Sequence[str]] = list,
    ) -> Client:
        """A Client over an existing connection (the CLI's: its deadline, cache, logging);
        ``reader`` serves reads that may come from a cache; ``identity`` says who the
        user is for reads (the CLI remembers it briefly); ``named``: the namespaces the
        user names (kubeconfig's contexts), for ``list(all_namespaces=True)``."""
        client = cls.__new__(cls)
        client.kube, client.reader, client.namespace = kube, reader or kube, namespace
        client._identity = identity or client.whoami
        client._named = named
        return client

    def whoami(self) -> Identity:
        """Who the API server says you are (username, groups, ant's user label)."""
        from ant.jobs.identity import whoami

        return whoami(self.kube)

    # ---- submit -------------------------------------------------------------------
    def submit(
        self,
        spec: JobSpec | str | None = None,
        *,
        command_line: str = "ant.Client.submit",
        cwd: str | None = None,
        on_unchecked: Callable[[str], None] | None = None,
        gang: bool = True,
        min_replicas: int | None = None,
        queue: str = "",
        **fields: Any,
    ) -> Job:
        """Submit a job; returns it as created (no replicas yet).

        ``spec`` is a ``JobSpec`` or the path of a YAML job spec file; ``fields`` override
        it by ``JobSpec`` field name: ``name``, ``image``, ``command`` (a list, or a string
        run by ``/bin/sh -c``), ``replicas``, ``resources``, ``env``, ``priority``,
        ``labels``, ``meta``, ``description``, ``secret_env`` (``["NAME=SECRET:KEY"]``),
        ``secret_mounts``, ``mounts``, ``config_maps`` (the CLI's grammar). Checked as the
        CLI checks: ``ValidationError`` (exit 2) before anything is sent, ``NotFoundError``
        for a missing Secret, PVC or ConfigMap, ``JobExists`` if the name is taken.
        ``on_unchecked`` hears of references ant may not read. ``gang``, ``min_replicas``
        and ``queue`` are ``--no-gang`` (False), ``--min-replicas`` and ``--queue``: a job
        of more than one replica is a gang by default (docs/queueing.md#gangs); where the
        cluster has no engine for it, it is submitted without one.
        """
        from ant.jobs import data, manifest
        from ant.jobs import gang as gangs
        from ant.jobs import spec as jobspec
        from ant.jobs.documents import rfc3339
        from ant.jobs.identity import whoami
        from ant.kube import resources as r
        from ant.kube.discovery import Discovery

        base = (
            jobspec.load_file(spec, environ=os.environ)
            if isinstance(spec, str)
            else spec or jobspec.JobSpec()
        )
        references = {k: fields.pop(k) for k in _REFERENCE_ARGS if k in fields}
        if isinstance(fields.get("command"), str):
            fields["command"] = ("/bin/sh", "-c", fields["command"])
        elif fields.get("command") is not None:
            fields["command"] = tuple(fields["command"])
        unknown = set(fields) - set(jobspec.JobSpec.__dataclass_fields__)
        if unknown:
            raise UsageError(f"submit() got unknown fields: {', '.join(sorted(unknown))}")
        job = base.with_overrides(**fields)
        if references:
            job = job.with_overrides(**data.parse_all(**references))
        if fields.get("name") and base.generate_name:
            job = job.with_overrides(generate_name="")
        jobspec.validate(job)
        provenance = manifest.Provenance(
            identity=whoami(self.kube),
            submitted_at=rfc3339(datetime.now(UTC)),
            command_line=command_line,
            git=manifest.git_info(cwd or os.getcwd()),
        )
        request = gangs.GangRequest(enabled=gang, min_replicas=min_replicas, queue=queue)
        gangs.validate(request, job.replicas)
        chosen = gangs.choose(
            request, job.replicas, lambda: Discovery(self.kube, None).serves(r.PODGROUPS)
        )
        manifests = manifest.build(job, manifest.job_name(job), self.namespace, provenance, chosen)
        return self.create(manifests, job.priority, on_unchecked=on_unchecked)

    def create(
        self,
        manifests: Manifests,
        priority: str,
        *,
        on_unchecked: Callable[[str], None] | None = None,
    ) -> Job:
        """Create a job from manifests already built (``ant.jobs.manifest.build``): the
        second half of ``submit``, and what ``ant submit`` calls."""
        from ant.jobs.model import job_from
        from ant.jobs.submission import submit

        created = submit(self.kube, manifests, priority, on_unchecked=on_unchecked)
        return job_from(created, [])

    # ---- read -----------------------------------------------------------------------
    def list(
        self,
        *,
        all_users: bool = False,
        user: str | None = None,
        selector: str | None = None,
        all_namespaces: bool = False,
        replicas: bool = True,
        preemptions: bool = False,
        on_across: Callable[[Across[builtins.list[Job]]], None] | None = None,
    ) -> list[Job]:
        """Jobs sorted by namespace and name: yours in the namespace, unless told otherwise
        (``user``: a username; ``selector``: a label selector). ``replicas=False`` skips
        the pods when the StatefulSets alone tell the status (one request, no ``pods``);
        ``preemptions`` counts each job's preemptions from the events.

        ``all_namespaces``: every namespace you may list jobs in. When the cluster-wide
        list is refused, each namespace is read (all of them if you may list namespaces,
        else your kubeconfig's), concurrently; ``on_across`` then hears which were read
        and which skipped (``ant.jobs.scope.Across``)."""
        from ant.jobs.identity import user_label
        from ant.jobs.lifecycle import list_jobs
        from ant.jobs.scope import across

        if all_users and user:
            raise UsageError("all_users and user contradict each other")
        owner = user_label(user) if user else None if all_users else self._identity().label

        def read(namespace: str | None) -> builtins.list[Job]:
            return list_jobs(
                self.kube,
                namespace,
                user_label=owner,
                selector=selector,
                track_preemptions=preemptions,
                summary_only=not replicas,
            )

        if not all_namespaces:
            jobs = read(self.namespace)
        else:
            found = across(self.kube, read, self._named)
            if on_across is not None and not found.everywhere:
                on_across(found)
            jobs = [j for scope in found.results.values() for j in scope]
        return sorted(jobs, key=lambda j: (j.namespace, j.name))

    def get(self, job: JobRef, *, fresh: bool = False, template: bool = False) -> Job:
        """The job now, with its replicas; ``NotFoundError`` (exit 3) if there is none.
        ``fresh``: from the API server even when reads go through a cache (the CLI's);
        ``template``: with what its pods run (image, command, env, volumes: ``job.template``)."""
        from ant.jobs.lifecycle import get_job

        reader = self.kube if fresh else self.reader
        return get_job(reader, self.namespace, _name(job), template=template)

    def events(self, job: JobRef) -> tuple[Job, builtins.list[Event]]:
        """The job, with what its pods run, and its recent events (what ``ant show`` prints)."""
        from ant.jobs.lifecycle import with_events

        return with_events(self.reader, self.get(job, template=True))

    def logs(
        self,
        job: JobRef,
        replica: int = 0,
        *,
        follow: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[str]:
        """The lines of one replica's log (each ends with its newline), as they come; with
        ``follow`` until the container stops or the iterator is closed."""
        from ant.jobs.lifecycle import LogOptions

        options = LogOptions(follow, tail, since_seconds, timestamps)
        chunks = self.log_bytes(job, replica, options)
        try:
            for chunk in chunks:
                yield chunk.decode(errors="replace")
        finally:  # closed early (a break, a notebook cell stopped): end the stream now
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def wait_until(
        self,
        jobs: Sequence[JobRef],
        until: str = "finished",
        *,
        timeout: float | None = None,
        any_: bool = False,
    ) -> dict[str, str]:
        """Until the jobs are ``running``, ``finished`` or ``succeeded`` (one of them, with
        ``any_``): one list and one watch (``ant.jobs.waiting``). Raises ``JobFailed`` when
        a job failed or can never get there, ``WaitTimeout`` after ``timeout`` seconds."""
        from ant.jobs.waiting import Condition
        from ant.jobs.waiting import wait as wait_for

        names = list(dict.fromkeys(j if isinstance(j, str) else j.name for j in jobs))
        verdicts = wait_for(
            self.reader,
            self.kube,
            self.namespace,
            names,
            Condition(until),
            timeout=timeout,
            any_=any_,
        )
        return {name: verdict.value for name, verdict in verdicts.items()}

    def with_pods(self, job: JobRef) -> Job:
        """The job, fresh, refusing one that ended: the controller scaled it to 0, so its
        pods (and their logs) are gone."""
        from ant.errors import NotFoundError

        found = self.get(job, fresh=True)
        if found.status.finished:
            raise NotFoundError(
                f"job {found.name} is {found.status.value}: its pods, and their logs, are gone",
                hint=f"'ant show {found.name}' has its exit codes",
            )
        return found

    def log_bytes(
        self, job: JobRef, replica: int = 0, options: LogOptions | None = None
    ) -> Iterator[bytes]:
        """``logs`` as the container wrote them: bytes, undecoded."""
        from ant.errors import ValidationError
        from ant.jobs.lifecycle import LogOptions, pod_logs

        found = self.with_pods(job)
        if not 0 <= replica < found.replicas:
            raise ValidationError(
                "--replica", f"{replica} is out of range: {found.name} has 0-{found.replicas - 1}"
            )
        pod = f"{found.name}-{replica}"
        return pod_logs(self.kube, self.namespace, pod, options or LogOptions())

    def exec(
        self,
        job: JobRef,
        command: Sequence[str],
        *,
        replica: int = 0,
        on_stdout: Callable[[bytes], None] | None = None,
        on_stderr: Callable[[bytes], None] | None = None,
        force: bool = False,
    ) -> ExecResult:
        """Run ``command`` in replica ``replica``'s container (no stdin, no terminal), as
        ``kubectl exec`` does through the API server; its exit code, and its output unless
        ``on_stdout``/``on_stderr`` take it as it comes. ``Forbidden`` (exit 4) when you
        may not exec, ``NotFoundError`` (exit 3) for a missing job or replica. A command
        can change anything in the pod: another user's job raises ``NotOwner`` (exit 9)
        unless ``force``."""
        from dataclasses import replace

        from ant.jobs import ownership
        from ant.jobs.manifest import CONTAINER
        from ant.kube.stream import exec_command

        found = job if isinstance(job, Job) and job.pods else self.get(job, fresh=True)
        if not force:
            owner = ownership.job_owner(found)
            ownership.check(found.name, self.namespace, owner, self._identity(), **_force(force))
        pod = self._running_pod(found, replica)
        out: list[bytes] = []
        err: list[bytes] = []
        result = exec_command(
            self.kube.transport,
            self.namespace,
            pod,
            list(command),
            container=CONTAINER,
            on_stdout=on_stdout or out.append,
            on_stderr=on_stderr or err.append,
        )
        return replace(result, stdout=b"".join(out), stderr=b"".join(err))

    def port_forward(
        self,
        job: JobRef,
        local_port: int,
        remote_port: int,
        *,
        replica: int = 0,
        on_ready: Callable[[int], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Forward 127.0.0.1:``local_port`` (0: a free one, given to ``on_ready``) to
        ``remote_port`` of replica ``replica``, as ``kubectl port-forward`` does, until
        ``stop`` is set. A refusal is raised before ``on_ready`` (``Forbidden``, exit 4)."""
        from ant.kube.stream import serve_port_forward

        pod = self._running_pod(job, replica)
        serve_port_forward(
            self.kube.transport,
            self.namespace,
            pod,
            local_port,
            remote_port,
            on_ready=on_ready or (lambda _port: None),
            on_error=on_error or (lambda _message: None),
            stop=stop,
        )

    def _running_pod(self, job: JobRef, replica: int) -> str:
        """The pod of a replica that runs (what exec and port-forward reach)."""
        from ant.errors import NotFoundError, ValidationError

        found = job if isinstance(job, Job) and job.pods else self.get(job, fresh=True)
        if not 0 <= replica < found.replicas:
            raise ValidationError(
                "--replica", f"{replica} is out of range: {found.name} has 0-{found.replicas - 1}"
            )
        pod = f"{found.name}-{replica}"
        if not any(p.index == replica and p.phase == "Running" for p in found.pods):
            raise NotFoundError(
                f"replica {replica} of {found.name} is not running (pod {pod})",
                hint=f"'ant show {found.name}' says why",
            )
        return pod

    # ---- write ----------------------------------------------------------------------
    def restart(
        self,
        job: JobRef,
        replicas: Sequence[int] | None = None,
        *,
        wait: bool = False,
        timeout: float = 600,
        force: bool = False,
        risk_slot: bool = False,
    ) -> dict[str, str]:
        """Delete the replicas' pods (all when ``replicas`` is None) to have them recreated;
        the pods deleted, each with its old uid. With ``wait``, until the new ones are
        Ready. A ``Job`` from ``get`` is acted on as read (a pod replaced since is kept).
        Another user's job raises ``NotOwner`` (exit 9) unless ``force``.

        On a full pool where pods of equal or higher priority wait for what the restart
        frees, nothing is deleted and ``SlotAtRisk`` says who waits, unless ``risk_slot``
        (docs/cli.md#ant-restart); with ``wait``, a replaced pod that waits unschedulable
        raises ``SlotLost`` instead of waiting out ``timeout``."""
        from ant.jobs import lifecycle, ownership, slots

        found = job if isinstance(job, Job) and job.pods else self.get(job, fresh=True)
        owner = ownership.job_owner(found)
        ownership.check(found.name, self.namespace, owner, self._identity(), **_force(force))
        if not risk_slot:
            slots.check(self.kube, found, replicas).refuse()
        deleted = lifecycle.restart(self.kube, found, replicas)
        if wait and deleted:
            pods = lifecycle.wait_replaced_and_ready(
                self.kube, found, deleted, timeout, stop_when_unschedulable=True
            )
            slots.lost_slots([pods[name] for name in deleted if name in pods])
        return deleted

    def delete(
        self,
        *jobs: JobRef,
        wait: bool = False,
        timeout: float = 300,
        on_deleted: Callable[[str], None] | None = None,
        force: bool = False,
    ) -> None:
        """Delete jobs (StatefulSet, pods, Service); ``on_deleted`` hears each name as it
        goes. With ``wait``, until their pods are gone. Another user's job raises
        ``NotOwner`` (exit 9) before anything is deleted, unless ``force``."""
        from ant.jobs import lifecycle, ownership

        names = [_name(j) for j in jobs]
        if not force:
            me = self._identity()
            for name, owner in ownership.owners(self.kube, self.namespace, names).items():
                ownership.check(name, self.namespace, owner, me, **_force(force))
        lifecycle.delete_jobs(self.kube, self.namespace, names, on_deleted=on_deleted)
        if wait:
            lifecycle.wait_gone(self.kube, self.namespace, names, timeout)

    def wait(self, job: JobRef, *, timeout: float = 600) -> Job:
        """Until every replica of the job is Ready (``wait_until(..., "running")``, as
        ``ant wait --for running``); the job then, read from the API server."""
        self.wait_until([job], "running", timeout=timeout)
        return self.get(job, fresh=True)

    def rollout(
        self,
        job: JobRef,
        *,
        max_unavailable: str | None = None,
        batch_size: int | None = None,
        replicas: str | None = None,
        timeout: float = 600,
    ) -> RolloutResult:
        """Replace the job's pods that run an old revision, batch by batch (docs/rollout.md);
        the arguments are ``ant rollout run``'s flags. ``RolloutPaused`` if pods fail."""
        from ant.jobs import rollout as ro

        options = ro.RolloutOptions(
            max_unavailable=ro.parse_budget(max_unavailable) if max_unavailable else None,
            batch_size=batch_size,
            replicas=ro.parse_replicas(replicas) if replicas is not None else None,
            timeout=timeout,
        )
        sts = ro.wait_observed(self.kube, ro.load(self.kube, self.namespace, _name(job)))
        return ro.run(self.kube, sts, options)


_REFERENCE_ARGS = ("secret_env", "secret_mounts", "mounts", "config_maps")


def _force(force: bool) -> dict[str, Any]:
    return {"force": force, "flag": "force=True"}


def _name(job: JobRef) -> str:
    if isinstance(job, Job):
        return job.name
    schema.validate_job_name(job, "job")
    return job
