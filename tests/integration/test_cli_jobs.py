"""The job commands end to end: the real CLI, in process, against the dev cluster.

Every command runs through ``ant.cli.main.run`` with an injected Environment (no patching
of sys), as alice or bob, exactly as typed at a shell. What ant created is checked with an
independent client (the ``kubernetes`` package, as admin), not with ant itself.

TPU jobs share the 8-node kwok pool with the rest of the session: every test deletes its
jobs with ``ant delete --wait`` (the ``jobs`` fixture) before it finishes.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ant.cli.environment import Environment
from ant.cli.main import run
from ant.errors import ExitCode
from tests.helpers import Result, run_ant, unique, wait_for

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

REPO = Path(__file__).resolve().parents[2]
CLI_MD = REPO / "docs" / "cli.md"
TPU = "google.com/tpu"


# ---- running ant ---------------------------------------------------------------------------


class TTYInput(io.StringIO):
    """A terminal on stdin that answers a prompt."""

    def isatty(self) -> bool:
        return True


@dataclass
class Ant:
    devcluster: DevCluster
    cwd: Path
    created: list[tuple[str, str]] = field(default_factory=list)  # (namespace, job)

    def __call__(
        self,
        *argv: str,
        user: str | None = "alice",
        kubeconfig: Path | None = None,
        stdin: io.StringIO | None = None,
        vars: dict[str, str] | None = None,
    ) -> Result:
        args = ["--kubeconfig", str(kubeconfig or self.devcluster.kubeconfig)]
        if user:
            args += ["--context", user]
        return run_ant(
            [*args, *argv], vars={"USER": "nobody", **(vars or {})}, stdin=stdin, cwd=self.cwd
        )

    def ok(self, *argv: str, **kwargs: Any) -> Result:
        result = self(*argv, **kwargs)
        assert result.code == 0, str(result)
        return result

    def submit(self, namespace: str, name: str, *flags: str, user: str = "alice") -> Result:
        """`ant submit` a job (busybox, no TPUs unless asked), remembered for clean-up."""
        self.created.append((namespace, name))
        return self.ok(
            "submit", "-n", namespace, "--name", name, "--image", "busybox:1.36", *flags, user=user
        )


@pytest.fixture
def ant(devcluster: DevCluster, tmp_path: Path) -> Iterator[Ant]:
    """Runs ant; afterwards deletes every job submitted through it and waits for the pods."""
    runner = Ant(devcluster, cwd=tmp_path)
    yield runner
    for namespace, name in runner.created:
        result = runner(
            "delete",
            "-n",
            namespace,
            name,
            "--yes",
            "--force",
            "--wait",
            "--timeout",
            "60s",
            user="admin",
        )
        assert result.code in (0, ExitCode.NOT_FOUND), str(result)


def job_json(ant: Ant, namespace: str, name: str) -> dict[str, Any]:
    return dict(ant.ok("show", name, "-n", namespace, "-o", "json").json())


def wait_job(
    ant: Ant,
    namespace: str,
    name: str,
    status: str,
    ready: int | None = None,
    until: Callable[[dict[str, Any]], bool] | None = None,
    what: str = "",
) -> dict[str, Any]:
    """The job's `show -o json` once it has `status` (and `ready`, and whatever `until` says)."""

    def probe() -> dict[str, Any] | None:
        job = job_json(ant, namespace, name)
        if job["status"] != status or (ready is not None and job["ready"] != ready):
            return None
        return job if until is None or until(job) else None

    return dict(wait_for(f"{name} to be {status}{what}", probe))


def k8s(devcluster: DevCluster) -> Any:
    """(CoreV1Api, AppsV1Api, ApiClient) as admin: the independent view of what exists."""
    from kubernetes import client

    api = devcluster.api_client("admin")
    return client.CoreV1Api(api), client.AppsV1Api(api), api


def exists(read: Callable[[], Any]) -> bool:
    from kubernetes.client import ApiException

    try:
        read()
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def objects_in(devcluster: DevCluster, namespace: str) -> tuple[list[str], list[str]]:
    """Names of the Services and StatefulSets in a namespace."""
    core, apps, api = k8s(devcluster)
    with api:
        services = [s.metadata.name for s in core.list_namespaced_service(namespace).items]
        sts = [s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items]
    return services, sts


def pod_uids(devcluster: DevCluster, namespace: str, job: str) -> dict[str, str]:
    core, _, api = k8s(devcluster)
    with api:
        pods = core.list_namespaced_pod(namespace, label_selector=f"ant.dev/job={job}").items
    return {p.metadata.name: p.metadata.uid for p in pods if not p.metadata.deletion_timestamp}


# ---- the documented -o json schemas (docs/cli.md) -------------------------------------------
def documented_schema(name: str) -> dict[str, str]:
    """The field table after `<!-- json-schema: NAME -->` in docs/cli.md: path -> type."""
    text = CLI_MD.read_text()
    marker = f"<!-- json-schema: {name} -->"
    assert marker in text, f"docs/cli.md documents no {name} schema"
    table = text.split(marker, 1)[1].strip().split("\n\n", 1)[0]
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|", table, flags=re.MULTILINE)
    assert rows, f"no rows in the {name} schema table"
    return dict(rows)


TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "map": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}


def check_schema(doc: Any, name: str) -> None:
    """Every field of `doc` is documented with its type; every documented field is there
    (fields inside an empty list or a null object cannot be checked)."""
    schema = documented_schema(name)
    seen: set[str] = set()
    empty_lists: set[str] = set()

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            path = prefix + key
            assert path in schema, f"{name}: field {path} is not documented in docs/cli.md"
            seen.add(path)
            kind = schema[path]
            nullable = kind.endswith(" or null")
            kind = kind.removesuffix(" or null")
            assert kind in TYPES, f"{name}: unknown type {kind!r} for {path} in docs/cli.md"
            if value is None:
                assert nullable, f"{name}: {path} is null but documented as {schema[path]}"
                empty_lists.add(path + ".")
                continue
            assert TYPES[kind](value), f"{name}: {path} = {value!r} is not a {kind}"
            if kind == "object":
                walk(value, path + ".")
            elif kind == "list":
                if not value:
                    empty_lists.add(path + "[].")
                for item in value:
                    if isinstance(item, dict):
                        walk(item, path + "[].")

    walk(doc, "")
    missing = {p for p in schema if p not in seen and not any(p.startswith(e) for e in empty_lists)}
    assert not missing, f"{name}: documented but missing from the output: {sorted(missing)}"


# ---- identity --------------------------------------------------------------------------------
def test_whoami_as_alice_and_bob(ant: Ant) -> None:
    result = ant.ok("whoami")
    assert "username:  alice" in result.out
    assert "label:     alice" in result.out
    doc = ant.ok("whoami", "-o", "json", user="bob").json()
    check_schema(doc, "whoami")
    assert (doc["username"], doc["label"], doc["context"]) == ("bob", "bob", "bob")
    assert doc["namespace"] == "research"
    assert "ant:researchers" in doc["groups"]
    # The context can come from ANT_CONTEXT in the environment, too.
    doc = ant.ok("whoami", "-o", "json", user=None, vars={"ANT_CONTEXT": "bob"}).json()
    assert doc["username"] == "bob"


def service_account_kubeconfig(
    devcluster: DevCluster, namespace: str, tmp_path: Path, sa: str
) -> Path:
    """A kubeconfig for a new ServiceAccount with researcher rights in `namespace`."""
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": sa}})
        client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"{sa}-researcher"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": devcluster.info["researcher_clusterrole"],
                },
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
            },
        )
        token = core.create_namespaced_service_account_token(
            sa, namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
    path = tmp_path / "sa-kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "dev",
                        "cluster": {
                            "server": devcluster.server,
                            "certificate-authority": str(devcluster.ca),
                        },
                    }
                ],
                "users": [{"name": sa, "user": {"token": token}}],
                "contexts": [
                    {"name": sa, "context": {"cluster": "dev", "user": sa, "namespace": namespace}}
                ],
                "current-context": sa,
            }
        )
    )
    return path


def test_a_username_that_is_not_a_label_value(
    ant: Ant, devcluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """A ServiceAccount's username (system:serviceaccount:NS:NAME) is mapped by the
    documented rule; the exact name is kept and shown."""
    from ant.jobs.identity import user_label

    username = f"system:serviceaccount:{namespace}:trainer"
    kubeconfig = service_account_kubeconfig(devcluster, namespace, tmp_path, "trainer")
    doc = ant.ok("whoami", "-o", "json", user=None, kubeconfig=kubeconfig).json()
    assert doc["username"] == username
    assert doc["label"] == user_label(username)
    assert doc["label"].startswith(f"system-serviceaccount-{namespace}-trainer_")

    name = unique("sa-job")
    ant.created.append((namespace, name))
    ant.ok("submit", "--name", name, "--image", "busybox", user=None, kubeconfig=kubeconfig)
    _, apps, api = k8s(devcluster)
    with api:
        sts = apps.read_namespaced_stateful_set(name, namespace)
    assert sts.metadata.labels["ant.dev/created-by"] == doc["label"]
    assert sts.metadata.annotations["ant.dev/created-by-full"] == username
    # Its owner sees it by default, alice only when she asks for it.
    mine = ant.ok("list", "-o", "name", user=None, kubeconfig=kubeconfig).out.split()
    assert mine == [name]
    assert name not in ant.ok("list", "-n", namespace, "-o", "name").out.split()
    listed = ant.ok("list", "-n", namespace, "--user", username, "-o", "json").json()
    assert [(j["name"], j["user"]) for j in listed["items"]] == [(name, username)]


# ---- list: mine by default, everyone's on request ----------------------------------------
def test_each_user_lists_only_their_own_jobs_in_research(ant: Ant) -> None:
    a, b = unique("alice-job"), unique("bob-job")
    assert ant.submit("research", a, "-o", "name").out == f"{a}\n"  # -o name: the name alone
    assert ant.submit("research", b, "-o", "name", user="bob").out == f"{b}\n"

    alice = ant.ok("list", "-o", "name").out.split()
    bob = ant.ok("list", "-o", "name", user="bob").out.split()
    assert a in alice
    assert b not in alice
    assert b in bob
    assert a not in bob
    for user in ("alice", "bob"):
        everyone = ant.ok("list", "--all-users", "-o", "json", user=user).json()
        check_schema(everyone, "JobList")
        users = {j["name"]: j["user"] for j in everyone["items"]}
        assert users[a] == "alice"
        assert users[b] == "bob"
    assert b in ant.ok("list", "--user", "bob", "-o", "name").out.split()

    # The table, as piped: stable columns, no colour.
    table = ant.ok("list", "--all-users").out
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "USER", "STATUS", "READY", "PRIORITY", "AGE"]
    assert "\x1b[" not in table
    row = next(r.split() for r in rows if r.startswith(a + " "))
    assert row[1] == "alice"
    assert row[4] == "normal"


def test_errors_from_the_server_have_their_exit_codes(ant: Ant) -> None:
    forbidden = ant("list", "-n", "bob-private")
    assert forbidden.code == ExitCode.UNAUTHORIZED, str(forbidden)
    assert len(forbidden.err_lines) == 1
    assert "forbidden" in forbidden.err.lower()

    missing = ant("show", "no-such-job")
    assert missing.code == ExitCode.NOT_FOUND
    assert missing.err_lines == [
        "ant: error: job no-such-job not found in namespace research "
        "('ant list' shows your jobs; -n picks the namespace)"
    ]

    name = unique("twice")
    ant.submit("research", name)
    again = ant("submit", "--name", name, "--image", "other")
    assert again.code == ExitCode.CONFLICT
    assert again.err_lines == [f"ant: error: job {name} already exists in namespace research"]


# ---- submit ----------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_submit_from_a_file(ant: Ant, devcluster: DevCluster, namespace: str) -> None:
    # Submitted from a dirty git checkout: the commit and the dirt are recorded.
    git(ant.cwd, "init", "-q")
    (ant.cwd / "train.py").write_text("print('v1')\n")
    git(ant.cwd, "add", "train.py")
    git(ant.cwd, "commit", "-q", "-m", "v1")
    commit = git(ant.cwd, "rev-parse", "HEAD")
    (ant.cwd / "train.py").write_text("print('v2')\n")

    name = unique("from-file")
    spec = ant.cwd / "job.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            image: busybox:1.36
            command: python train.py --lr 3e-4
            replicas: 2
            env: {{WANDB_PROJECT: bert}}
            labels: {{team: nlp, stage: dev}}
            meta: {{dataset: c4-en}}
            description: BERT-large, seq 512
            podTemplate:
              metadata: {{annotations: {{lab.example.com/owner: nlp}}}}
            """
        )
    )
    ant.created.append((namespace, name))
    result = ant.ok("submit", str(spec), "-n", namespace, "--label", "stage=prod")
    assert result.out == f"job/{name} submitted to {namespace}: 2 replica(s), priority normal\n"

    job = wait_job(ant, namespace, name, "Running", ready=2)
    check_schema(job, "Job")
    assert job["labels"] == {"team": "nlp", "stage": "prod"}
    assert job["meta"] == {"dataset": "c4-en"}
    assert job["description"] == "BERT-large, seq 512"
    notes = job["annotations"]
    assert notes["ant.dev/created-by-full"] == "alice"
    assert notes["ant.dev/schema-version"] == "1"
    assert notes["ant.dev/git-commit"] == commit
    assert notes["ant.dev/git-dirty"] == "true"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", notes["ant.dev/submitted-at"])
    assert notes["ant.dev/command-line"].endswith(
        f"submit {spec} -n {namespace} --label stage=prod"
    )

    core, apps, api = k8s(devcluster)
    with api:
        sts = apps.read_namespaced_stateful_set(name, namespace)
        pods = core.list_namespaced_pod(
            namespace, label_selector=f"ant.dev/created-by=alice,ant.dev/job={name},team=nlp"
        ).items
        assert exists(lambda: core.read_namespaced_service(name, namespace))
    main = sts.spec.template.spec.containers[0]
    assert main.command == ["/bin/sh", "-c", "python train.py --lr 3e-4"]
    assert {e.name: e.value for e in main.env}["WANDB_PROJECT"] == "bert"
    assert sts.spec.template.spec.priority_class_name == "ant-normal"
    assert sts.spec.update_strategy.type == "OnDelete"
    assert sts.spec.pod_management_policy == "Parallel"
    # The labels are on the pods (selectable), and so is the user's template.
    assert sorted(p.metadata.name for p in pods) == [f"{name}-0", f"{name}-1"]
    for pod in pods:
        assert pod.metadata.labels["ant.dev/managed-by"] == "ant"
        assert pod.metadata.labels["ant.dev/priority"] == "normal"
        assert pod.metadata.labels["stage"] == "prod"
        assert pod.metadata.annotations["lab.example.com/owner"] == "nlp"
        assert pod.spec.priority == 10_000


def test_submit_from_flags(ant: Ant, devcluster: DevCluster, namespace: str) -> None:
    name = unique("flags")
    ant.created.append((namespace, name))
    result = ant.ok(
        "submit",
        "--name",
        name,
        "--image",
        "busybox:1.36",
        "--replicas",
        "2",
        "--priority",
        "high",
        "--env",
        "SEED=7",
        "--label",
        "team=nlp",
        "--meta",
        "wandb=https://wandb.ai/lab/run/1",
        "--description",
        "flags only",
        "-o",
        "json",
        "-n",  # a global option after the command's own
        namespace,
        "--",
        "python",
        "train.py",
        "-n",
        "3",
    )
    doc = result.json()
    check_schema(doc, "SubmittedJob")
    assert (doc["apiVersion"], doc["kind"], doc["name"]) == ("ant.dev/v1", "Job", name)
    assert doc["namespace"] == namespace
    assert doc["status"] == "Queued"  # just created, a gang (2 replicas): nothing scheduled yet
    assert (doc["replicas"], doc["priority"], doc["user"]) == (2, "high", "alice")
    assert doc["labels"] == {"team": "nlp"}
    assert doc["meta"] == {"wandb": "https://wandb.ai/lab/run/1"}

    _, apps, api = k8s(devcluster)
    with api:
        sts = apps.read_namespaced_stateful_set(name, namespace)
    main = sts.spec.template.spec.containers[0]
    assert main.command == ["python", "train.py", "-n", "3"]
    assert sts.spec.template.spec.priority_class_name == "ant-high"
    assert sts.spec.template.metadata.labels["ant.dev/priority"] == "high"
    wait_job(ant, namespace, name, "Running", ready=2)


def test_dry_run_creates_nothing(ant: Ant, devcluster: DevCluster, namespace: str) -> None:
    name = unique("dry")
    as_alice = ant.ok("submit", "--dry-run", "--name", name, "--image", "i", "-n", namespace)
    docs = yaml.safe_load(as_alice.out)
    assert [i["kind"] for i in docs["items"]] == ["Service", "StatefulSet"]
    assert docs["items"][1]["metadata"]["namespace"] == namespace
    # No kubeconfig at all: still works; the submitter is the local user.
    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["submit", "--dry-run", "--name", name, "--image", "i", "-o", "json"],
        env=Environment(stdin=io.StringIO(""), stdout=out, stderr=err, vars={"USER": "alice"}),
    )
    assert code == 0, err.getvalue()
    sts = json.loads(out.getvalue())["items"][1]
    assert sts["metadata"]["namespace"] == "default"
    assert sts["metadata"]["annotations"]["ant.dev/created-by-full"] == "alice"
    assert objects_in(devcluster, namespace) == ([], [])


BAD_SPECS: list[tuple[str, list[str], str | None, str]] = [
    ("bad name", ["--name", "Bad_Name"], None, "not a valid job name"),
    ("long name", ["--name", "a" * 53], None, "at most 52"),
    ("bad label", ["--label", "team=not ok"], None, "not a valid label value"),
    ("reserved label", ["--label", "ant.dev/job=x"], None, "prefix is reserved"),
    ("huge annotation", ["--meta", "notes=" + "x" * (256 * 1024)], None, "Kubernetes allows"),
    ("unknown field", [], "replica: 2\n", "unknown field (did you mean replicas?)"),
    ("negative replicas", ["--replicas", "-2"], None, "not a positive number of replicas"),
    ("unknown priority", ["--priority", "urgent"], None, "unknown priority 'urgent'"),
    ("bad quantity", ["--resource", "memory=64 GiB"], None, "is not a quantity"),
    (
        "bad pod template",
        [],
        "podTemplate: {spec: {containers: [{name: main, mounts: []}]}}\n",
        "podTemplate (",
    ),
    # Only the API server knows this one: its dry run refuses it, before anything is created.
    (
        "rejected by the server",
        [],
        "tolerations: [{key: google.com/tpu, operator: Sometimes}]\n",
        'Unsupported value: "Sometimes"',
    ),
]


@pytest.mark.parametrize(
    ("flags", "file", "message"),
    [case[1:] for case in BAD_SPECS],
    ids=[case[0] for case in BAD_SPECS],
)
def test_a_bad_spec_is_one_line_exit_2_and_creates_nothing(
    ant: Ant,
    devcluster: DevCluster,
    namespace: str,
    flags: list[str],
    file: str | None,
    message: str,
) -> None:
    argv = ["submit", "-n", namespace]
    if file is not None:
        spec = ant.cwd / "job.yaml"
        spec.write_text(f"name: bad-spec\nimage: busybox\n{file}")
        argv.append(str(spec))
    else:
        argv += ["--name", "bad-spec", "--image", "busybox"]
    ant.created.append((namespace, "bad-spec"))
    result = ant(*argv, *flags)
    assert result.code == ExitCode.USAGE, str(result)
    assert len(result.err_lines) == 1, str(result)
    assert result.err_lines[0].startswith("ant: error: ")
    assert message in result.err
    assert "Traceback" not in result.err
    assert result.out == ""
    assert objects_in(devcluster, namespace) == ([], [])


def deny_statefulset_creation(devcluster: DevCluster, namespace: str) -> Callable[[], None]:
    """A ValidatingAdmissionPolicy that refuses real (not dry-run) StatefulSet creations in
    `namespace`: the server-side dry run passes, the create that follows fails. Returns the
    clean-up. The policy takes effect asynchronously; this waits until it does."""
    from kubernetes import client

    name = f"ant-test-deny-sts-{namespace}"
    with devcluster.api_client("admin") as api:
        admission = client.AdmissionregistrationV1Api(api)
        admission.create_validating_admission_policy(
            {
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": ["apps"],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["statefulsets"],
                            }
                        ]
                    },
                    "matchConditions": [{"name": "not-dry-run", "expression": "!request.dryRun"}],
                    "validations": [
                        {"expression": "false", "message": "test: StatefulSets are refused here"}
                    ],
                },
            }
        )
        admission.create_validating_admission_policy_binding(
            {
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        }
                    },
                },
            }
        )

    def cleanup() -> None:
        with devcluster.api_client("admin") as api:
            admission = client.AdmissionregistrationV1Api(api)
            admission.delete_validating_admission_policy_binding(name)
            admission.delete_validating_admission_policy(name)

    def denied() -> bool:
        probe = unique("probe")
        body = {
            "metadata": {"name": probe},
            "spec": {
                "replicas": 0,
                "serviceName": probe,
                "selector": {"matchLabels": {"probe": probe}},
                "template": {
                    "metadata": {"labels": {"probe": probe}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }
        with devcluster.api_client("admin") as api:
            apps = client.AppsV1Api(api)
            try:
                apps.create_namespaced_stateful_set(namespace, body)
            except client.ApiException as e:
                if e.status == 422 and "refused here" in str(e.body):
                    return True
                raise
            apps.delete_namespaced_stateful_set(probe, namespace)
            return False

    try:
        wait_for("the admission policy to take effect", denied, timeout=20)
    except BaseException:
        cleanup()
        raise
    return cleanup


def test_a_failing_statefulset_create_leaves_no_service(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    cleanup = deny_statefulset_creation(devcluster, namespace)
    try:
        name = unique("victim")
        ant.created.append((namespace, name))
        result = ant("submit", "-n", namespace, "--name", name, "--image", "busybox")
        assert result.code == ExitCode.USAGE, str(result)  # 422 from admission
        assert len(result.err_lines) == 1
        assert "test: StatefulSets are refused here" in result.err
        # The Service had been created (the dry run passed); it was removed again.
        core, apps, api = k8s(devcluster)
        with api:
            assert not exists(lambda: core.read_namespaced_service(name, namespace))
            assert not exists(lambda: apps.read_namespaced_stateful_set(name, namespace))
    finally:
        cleanup()


# ---- statuses on the TPU pool ------------------------------------------------------------------
def test_pending_partial_running_on_the_tpu_pool(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    nodes, tpus = devcluster.node_count, devcluster.tpus_per_node
    assert (nodes, tpus) == (8, 4)
    big, partial, pending = unique("big"), unique("partial"), unique("pending")
    # 6 whole hosts, running.
    ant.submit(namespace, big, "--replicas", "6", "--tpus", "4")
    wait_job(ant, namespace, big, "Running", ready=6)
    # 4 hosts wanted, 2 free: half of a job without a gang scheduled (a gang would wait
    # Queued, tests/integration/test_gangs.py). Opportunistic never preempts.
    ant.submit(
        namespace, partial, "--replicas", "4", "--tpus", "4", "--priority", "opportunistic",
        "--no-gang",
    )  # fmt: skip

    def unscheduled_have_reasons(job: dict[str, Any]) -> bool:
        # All four pods exist (the StatefulSet controller creates them one call at a time)
        # and the scheduler has written PodScheduled=False, a moment later, on the two
        # that found no room.
        unscheduled = [p for p in job["pods"] if not p["node"]]
        return (
            len(job["pods"]) == 4
            and len(unscheduled) == 2
            and all(p["reason"] for p in unscheduled)
        )

    job = wait_job(
        ant,
        namespace,
        partial,
        "Partial",
        ready=2,
        until=unscheduled_have_reasons,
        what=" with its four pods, and the scheduler's reason on both unscheduled ones",
    )
    assert (job["replicas"], job["pending"]) == (4, 2)
    unscheduled = [p for p in job["pods"] if not p["node"]]
    assert len(unscheduled) == 2
    assert {p["reason"] for p in unscheduled} == {"Unschedulable"}
    assert all(TPU in p["message"] for p in unscheduled)
    # The pool is full: nothing of this one is scheduled.
    ant.submit(namespace, pending, "--tpus", "4", "--priority", "opportunistic")
    job = wait_job(ant, namespace, pending, "Pending")
    assert (job["ready"], job["pending"]) == (0, 1)

    listed = ant.ok("list", "-n", namespace, "-o", "json").json()
    check_schema(listed, "JobList")
    assert {j["name"]: j["status"] for j in listed["items"]} == {
        big: "Running",
        partial: "Partial",
        pending: "Pending",
    }
    waiting = ant.ok("list", "-n", namespace, "--status", "pending,Partial", "-o", "name")
    assert sorted(waiting.out.split()) == sorted([partial, pending])
    wide = ant.ok("list", "-n", namespace, "-o", "wide").out
    assert wide.splitlines()[0].split()[:6] == [
        "NAME",
        "USER",
        "STATUS",
        "READY",
        "PRIORITY",
        "AGE",
    ]

    deleted = ant.ok("delete", "-n", namespace, big, partial, pending, "--yes", "--wait")
    assert deleted.out.splitlines() == [f"job/{n} deleted" for n in (big, partial, pending)]
    core, _, api = k8s(devcluster)
    with api:
        assert core.list_namespaced_pod(namespace).items == []


# ---- logs, restart, delete ------------------------------------------------------------------
def test_logs_of_one_and_all_replicas(ant: Ant, namespace: str) -> None:
    name = unique("logs")
    ant.submit(namespace, name, "--replicas", "2")
    wait_job(ant, namespace, name, "Running", ready=2)

    one = ant.ok("logs", name, "-n", namespace).out.splitlines()
    assert len(one) == 10
    assert any("step=" in line for line in one)
    assert not one[0].startswith("[")
    assert (
        ant.ok("logs", name, "-n", namespace, "-r", "1", "--tail", "3").out.splitlines()
        == (one[-3:])
    )

    every = ant.ok("logs", name, "-n", namespace, "--all").out.splitlines()
    assert len(every) == 20
    for i in (0, 1):
        mine = [line for line in every if line.startswith(f"[{name}-{i}] ")]
        assert [line.split(" ", 1)[1] for line in mine] == one
    tail = ant.ok("logs", name, "-n", namespace, "--all", "--tail", "1").out.splitlines()
    assert sorted(tail) == sorted(f"[{name}-{i}] {one[-1]}" for i in (0, 1))

    out_of_range = ant("logs", name, "-n", namespace, "-r", "2")
    assert out_of_range.code == ExitCode.USAGE
    assert out_of_range.err_lines == [f"ant: error: --replica: 2 is out of range: {name} has 0-1"]


def test_restart_one_replica_recreates_only_that_pod(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    name = unique("restart")
    ant.submit(namespace, name, "--replicas", "3")
    wait_job(ant, namespace, name, "Running", ready=3)
    before = pod_uids(devcluster, namespace, name)
    assert len(before) == 3

    # Every replica, without --yes and without a terminal: refused, nothing restarted.
    refused = ant("restart", name, "-n", namespace)
    assert refused.code == ExitCode.USAGE
    assert "pass --yes" in refused.err
    assert pod_uids(devcluster, namespace, name) == before

    result = ant.ok(
        "restart", name, "-n", namespace, "--replica", "1", "--wait", "--timeout", "45s"
    )
    assert result.out == f"pod/{name}-1 deleted\n"
    after = pod_uids(devcluster, namespace, name)
    assert set(after) == set(before)
    assert after[f"{name}-1"] != before[f"{name}-1"]
    assert after[f"{name}-0"] == before[f"{name}-0"]
    assert after[f"{name}-2"] == before[f"{name}-2"]
    job = job_json(ant, namespace, name)
    assert (job["status"], job["ready"]) == ("Running", 3)


def test_delete_removes_both_objects(ant: Ant, devcluster: DevCluster, namespace: str) -> None:
    name = unique("delete")
    ant.submit(namespace, name, "--replicas", "2")

    def both_exist() -> bool:
        core, apps, api = k8s(devcluster)
        with api:
            return exists(lambda: core.read_namespaced_service(name, namespace)) and exists(
                lambda: apps.read_namespaced_stateful_set(name, namespace)
            )

    def neither_exists() -> bool:
        core, apps, api = k8s(devcluster)
        with api:
            return not exists(lambda: core.read_namespaced_service(name, namespace)) and not (
                exists(lambda: apps.read_namespaced_stateful_set(name, namespace))
            )

    assert both_exist()
    # No --yes and no terminal: refuse, delete nothing.
    refused = ant("delete", name, "-n", namespace)
    assert refused.code == ExitCode.USAGE
    assert refused.err_lines == [
        f"ant: error: Delete 1 job(s) in {namespace} ({name}): needs confirmation "
        "(pass --yes to confirm in scripts)"
    ]
    # At a terminal, "no" means no.
    declined = ant("delete", name, "-n", namespace, stdin=TTYInput("n\n"))
    assert declined.code == ExitCode.ERROR
    assert "nothing deleted" in declined.err
    assert both_exist()

    result = ant.ok("delete", name, "-n", namespace, "--wait", stdin=TTYInput("y\n"))
    assert result.out == f"job/{name} deleted\n"
    assert "[y/N]" in result.err
    assert neither_exists()
    core, _, api = k8s(devcluster)
    with api:
        assert core.list_namespaced_pod(namespace).items == []
    assert ant("show", name, "-n", namespace).code == ExitCode.NOT_FOUND
    assert ant("delete", name, "-n", namespace, "--yes").code == ExitCode.NOT_FOUND


def test_show_output(ant: Ant, namespace: str) -> None:
    name = unique("show")
    ant.submit(namespace, name, "--label", "team=nlp", "--meta", "dataset=c4")
    wait_job(ant, namespace, name, "Running", ready=1)
    text = ant.ok("show", name, "-n", namespace).out
    assert f"Name:         {name}" in text
    assert "Status:       Running" in text
    assert "Label team:   nlp" in text
    assert "Meta dataset: c4" in text
    assert "REPLICA   POD" in text
    doc = yaml.safe_load(ant.ok("show", name, "-n", namespace, "-o", "yaml").out)
    check_schema(doc, "Job")
    assert [p["name"] for p in doc["pods"]] == [f"{name}-0"]
    assert any(e["reason"] == "SuccessfulCreate" for e in doc["events"])


# ---- text from the cluster never drives your terminal (issue 14) ----------------------------
HOSTILE = "\x1b]0;pwned\x07 \x1b[2J"  # retitle the window, clear the screen
SHOWN = r"\x1b]0;pwned\x07 \x1b[2J"
SGR = re.compile("\x1b\\[[0-9;]*m")  # colours: the only escapes ant itself writes on a TTY


class TTYOutput(io.StringIO):
    def isatty(self) -> bool:
        return True


def on_a_tty(ant: Ant, *argv: str) -> str:
    """stdout of `ant ARGV` as alice at a terminal that shows colours."""
    out, err = TTYOutput(), TTYOutput()
    env = Environment(
        stdin=io.StringIO(""),
        stdout=out,
        stderr=err,
        vars={"USER": "nobody", "TERM": "xterm"},
        cwd=str(ant.cwd),
    )
    args = ["--kubeconfig", str(ant.devcluster.kubeconfig), "--context", "alice", *argv]
    assert run(args, env=env) == 0, err.getvalue()
    return out.getvalue()


def test_escape_sequences_from_the_cluster_are_shown_not_sent(
    ant: Ant, devcluster: DevCluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone's description, --meta and user annotation carry escape sequences: `ant list`,
    `show` and `queue` write them out, piped and on a TTY; JSON keeps the exact text."""
    monkeypatch.setenv("COLUMNS", "400")  # rich's width: no cell is cut short
    name = unique("inject")
    # 8 TPUs a pod fit no node (4 each): the job waits and shows in `ant queue`.
    ant.submit(
        namespace,
        name,
        "--tpus",
        "8",
        "--description",
        f"desc {HOSTILE}",
        "--meta",
        f"note={HOSTILE}",
    )
    _, apps, api = k8s(devcluster)
    with api:  # what another user could write with kubectl
        apps.patch_namespaced_stateful_set(
            name,
            namespace,
            {"metadata": {"annotations": {"ant.dev/created-by-full": f"alice{HOSTILE}"}}},
        )

    def queued() -> str | None:
        text = ant.ok("queue", "-n", namespace, "-o", "wide").out
        return text if name in text else None

    outputs = {
        "list": ant.ok("list", "-n", namespace, "-o", "wide").out,
        "show": ant.ok("show", name, "-n", namespace).out,
        "queue": wait_for(f"{name} in ant queue", queued),
    }
    outputs |= {
        f"{command} on a TTY": on_a_tty(ant, *argv)
        for command, argv in {
            "list": ("list", "-n", namespace, "-o", "wide"),
            "show": ("show", name, "-n", namespace),
            "queue": ("queue", "-n", namespace, "-o", "wide"),
        }.items()
    }
    for command, text in outputs.items():
        assert "\x07" not in text, command
        assert "\x1b" not in SGR.sub("", text), command
        assert f"alice{SHOWN}" in text, command
    assert f"desc {SHOWN}" in outputs["list"]
    assert f"Description:  desc {SHOWN}" in outputs["show"]
    assert f"Meta note:    {SHOWN}" in outputs["show"]
    doc = job_json(ant, namespace, name)
    assert (doc["description"], doc["meta"]["note"]) == (f"desc {HOSTILE}", HOSTILE)
    assert doc["user"] == f"alice{HOSTILE}"
