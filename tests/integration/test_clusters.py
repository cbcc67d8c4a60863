"""Several clusters, no central record (issue 16): one view across them, jobs addressed as
CLUSTER/JOB, and a cluster that does not answer never holding up the others.

Two dev clusters side by side: the shared one (dev-1) and a second one that
`cluster.py up --count 2` starts next to it (dev-2). Like the shared cluster, the second
is left running for other sessions; `make cluster-down` stops both.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ant.errors import ExitCode
from tests.conftest import CLUSTER_SCRIPT, CLUSTER_UP_TIMEOUT, ORIGINAL_ENV, DevCluster
from tests.helpers import Result, run_ant, unique, wait_for

pytestmark = pytest.mark.cluster

DEV1, DEV2 = "alice@dev-1", "alice@dev-2"
BOTH = f"{DEV1},{DEV2}"


@dataclass(frozen=True)
class Clusters:
    kubeconfig: Path  # contexts USER@dev-1 and USER@dev-2

    def ant(self, *argv: str, **vars: str) -> Result:
        return run_ant(argv, vars={"KUBECONFIG": str(self.kubeconfig), **vars})


@pytest.fixture(scope="module")
def clusters(devcluster: DevCluster, ant_priorities: None) -> Clusters:
    proc = subprocess.run(
        [sys.executable, str(CLUSTER_SCRIPT), "up", "--count", "2"],
        env=dict(ORIGINAL_ENV),
        capture_output=True,
        text=True,
        timeout=CLUSTER_UP_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"cluster.py up --count 2 exited {proc.returncode}:\n{proc.stderr}")
    found = Clusters(Path(proc.stdout.strip().splitlines()[-1]))
    installed = found.ant("--context", "admin@dev-2", "admin", "install-priorities")
    assert installed.code == 0, installed
    return found


@pytest.fixture
def jobs(clusters: Clusters) -> Iterator[list[str]]:
    """Names given out by the test; each deleted afterwards wherever it is."""
    names: list[str] = []
    yield names
    for context in (DEV1, DEV2):
        mine = [n for n in names if clusters.ant("--context", context, "show", n).code == 0]
        if mine:
            clusters.ant("--context", context, "delete", "--yes", "--force", *mine)


def submit(clusters: Clusters, context: str, name: str) -> None:
    result = clusters.ant(
        "--context", context, "submit", "--name", name, "--image", "busybox", "--", "sleep", "1h"
    )
    assert result.code == 0, result


def test_the_two_dev_clusters_are_two_clusters(clusters: Clusters) -> None:
    text = clusters.kubeconfig.read_text()
    servers = {line.split()[-1] for line in text.splitlines() if "server:" in line}
    assert len(servers) == 2
    for context in (DEV1, DEV2, "admin@dev-2", "viewer@dev-2"):
        assert f'"{context}"' in text
    assert clusters.ant("--context", DEV2, "whoami").code == 0


def test_list_across_clusters_shows_each_job_with_its_cluster(
    clusters: Clusters, jobs: list[str]
) -> None:
    one, two, both = unique("mc-one"), unique("mc-two"), unique("mc-both")
    jobs += [one, two, both]
    submit(clusters, DEV1, one)
    submit(clusters, DEV2, two)
    submit(clusters, DEV1, both)
    submit(clusters, DEV2, both)

    listed = clusters.ant("--clusters", BOTH, "list", "-o", "json")
    assert listed.code == 0, listed
    where = {(i["cluster"], i["name"]) for i in listed.json()["items"]}
    assert {(DEV1, one), (DEV2, two), (DEV1, both), (DEV2, both)} <= where
    assert (DEV2, one) not in where
    assert (DEV1, two) not in where
    assert "unanswered" not in listed.json()

    table = clusters.ant("list", "--all-clusters", ANT_CLUSTERS=BOTH)
    assert table.code == 0, table
    assert table.out.splitlines()[0].split()[0] == "CLUSTER"
    rows = {tuple(line.split()[:2]) for line in table.out.splitlines()[1:]}
    assert {(DEV1, one), (DEV2, two), (DEV1, both), (DEV2, both)} <= rows

    queues = clusters.ant("--clusters", BOTH, "queue", "--all-users", "-o", "json")
    assert queues.code == 0, queues
    assert queues.json()["kind"] == "QueueList"
    assert [q["cluster"] for q in queues.json()["items"]] == [DEV1, DEV2]
    assert all(q["kind"] == "Queue" and q["capacity"] for q in queues.json()["items"])

    # One cluster, as always: no CLUSTER column, no cluster field.
    alone = clusters.ant("--context", DEV2, "list", "-o", "json")
    assert all("cluster" not in i for i in alone.json()["items"])


def test_a_job_is_addressed_by_cluster_or_found_where_it_is(
    clusters: Clusters, jobs: list[str]
) -> None:
    only_two, both = unique("mc-only"), unique("mc-twice")
    jobs += [only_two, both]
    submit(clusters, DEV2, only_two)
    submit(clusters, DEV1, both)
    submit(clusters, DEV2, both)

    found = clusters.ant("--clusters", BOTH, "show", only_two, "-o", "json")
    assert found.code == 0, found
    assert (found.json()["name"], found.json()["cluster"]) == (only_two, DEV2)

    ambiguous = clusters.ant("--clusters", BOTH, "show", both)
    assert ambiguous.code == ExitCode.USAGE, ambiguous
    assert f"{DEV1}/{both}" in ambiguous.err
    assert f"{DEV2}/{both}" in ambiguous.err

    missing = clusters.ant("--clusters", BOTH, "show", unique("mc-none"))
    assert missing.code == ExitCode.NOT_FOUND, missing

    # CLUSTER/JOB works from any context, and acts only there.
    deleted = clusters.ant("--context", DEV1, "delete", "--yes", f"{DEV2}/{both}")
    assert deleted.code == 0, deleted
    assert clusters.ant("--context", DEV1, "show", both).code == 0
    gone = clusters.ant("--context", DEV2, "show", both)
    assert gone.code == ExitCode.NOT_FOUND or "Terminating" in gone.out, gone


@pytest.fixture
def silent_cluster(clusters: Clusters, tmp_path: Path) -> Iterator[str]:
    """A kubeconfig (next to the dev clusters') with a context `silent`: its server
    accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    extra = tmp_path / "silent.kubeconfig"
    extra.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: silent\n  cluster:\n    server: https://127.0.0.1:{server.getsockname()[1]}\n"
        "users:\n- name: silent\n  user:\n    token: not-a-real-token\n"
        "contexts:\n- name: silent\n  context:\n    cluster: silent\n    user: silent\n"
        "    namespace: research\n"
    )
    yield f"{clusters.kubeconfig}:{extra}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_cluster_gives_a_partial_answer_within_its_timeout(
    clusters: Clusters, jobs: list[str], silent_cluster: str
) -> None:
    name = unique("mc-partial")
    jobs.append(name)
    submit(clusters, DEV1, name)

    started = time.monotonic()
    listed = run_ant(
        ["--clusters", f"{DEV1},silent", "list", "-o", "json"],
        vars={"KUBECONFIG": silent_cluster, "ANT_CLUSTER_TIMEOUT": "2s"},
    )
    elapsed = time.monotonic() - started

    assert listed.code == ExitCode.PARTIAL, listed
    assert elapsed < 2 + 3, f"took {elapsed:.1f}s with a 2s per-cluster timeout"
    document = listed.json()
    assert (DEV1, name) in {(i["cluster"], i["name"]) for i in document["items"]}
    assert [u["cluster"] for u in document["unanswered"]] == ["silent"]
    assert "partial answer: no answer from silent" in listed.err

    queues = run_ant(
        ["--clusters", f"{DEV1},silent", "queue", "-o", "json"],
        vars={"KUBECONFIG": silent_cluster, "ANT_CLUSTER_TIMEOUT": "2s"},
    )
    assert queues.code == ExitCode.PARTIAL, queues
    assert [q["cluster"] for q in queues.json()["items"]] == [DEV1]
    assert [u["cluster"] for u in queues.json()["unanswered"]] == ["silent"]

    table = run_ant(
        ["--clusters", f"silent,{DEV1}", "list"],
        vars={"KUBECONFIG": silent_cluster, "ANT_CLUSTER_TIMEOUT": "2s"},
    )
    assert table.code == ExitCode.PARTIAL, table
    silent_row = next(line for line in table.out.splitlines() if line.startswith("silent"))
    assert "no answer" in silent_row
    assert any(line.startswith(DEV1) and name in line for line in table.out.splitlines())


def test_submit_across_clusters_places_the_job_where_its_gang_fits_and_says_so(
    clusters: Clusters, jobs: list[str]
) -> None:
    # As admin, ant sees every pod, so free capacity is known. dev-2 holds only this
    # module's jobs, which ask for no TPUs: four of them fit there now.
    order = "admin@dev-2,admin@dev-1"
    name = unique("mc-placed")
    jobs.append(name)
    argv = ["--clusters", order, "submit", "--name", name, "--image", "busybox", "--tpus", "4"]
    dry = clusters.ant(*argv, "--dry-run", "-o", "json")
    assert dry.code == 0, dry
    assert "placing the job in admin@dev-2: the whole gang fits now (4 google.com/tpu of" in dry.err
    assert clusters.ant("--context", "admin@dev-2", "show", name).code == ExitCode.NOT_FOUND

    submitted = clusters.ant(*argv, "-n", "research", "--", "sleep", "1h")
    assert submitted.code == 0, submitted
    shown = clusters.ant("--context", "admin@dev-2", "-n", "research", "show", name, "-o", "json")
    assert shown.code == 0, shown
    placement = shown.json()["annotations"]["ant.dev/placement"]
    assert placement.startswith("admin@dev-2: the whole gang fits now (4 google.com/tpu of")
    absent = clusters.ant("--context", "admin@dev-1", "-n", "research", "show", name)
    assert absent.code == ExitCode.NOT_FOUND, absent

    # More than any one cluster has: it fits nowhere, not even empty, and the reason
    # says so; it goes to the first listed.
    too_big = clusters.ant(
        "--clusters",
        order,
        "submit",
        "--name",
        unique("mc-big"),
        "--image",
        "busybox",
        "--replicas",
        "9",
        "--tpus",
        "4",
        "--dry-run",
    )
    assert too_big.code == 0, too_big
    assert (
        "placing the job in admin@dev-2: it fits in no cluster, not even an empty one "
        "(36 google.com/tpu wanted, at most 32 on any cluster's Ready nodes)"
    ) in too_big.err


def test_the_config_file_names_the_clusters_each_with_its_namespace_and_cache(
    clusters: Clusters, jobs: list[str], tmp_path: Path
) -> None:
    """The config file's `clusters` is the default set; a context's section gives that
    cluster its namespace and its cache (here one that is down: only dev-2's reads fall
    back, with one warning naming it)."""
    here, there = unique("mc-cfg-here"), unique("mc-cfg-there")
    jobs.append(here)
    submit(clusters, DEV1, here)
    made = clusters.ant(
        "--context", DEV2, "-n", "queued", "submit", "--name", there, "--image", "busybox",
        "--", "sleep", "1h",
    )  # fmt: skip
    assert made.code == 0, made
    config = tmp_path / "config.yaml"
    config.write_text(
        f"clusters: [{DEV1}, {DEV2}]\n"
        f"contexts:\n  {DEV2}: {{namespace: queued, cache: 'http://127.0.0.1:1'}}\n"
    )
    try:
        listed = clusters.ant("list", "-o", "json", ANT_CONFIG=str(config))
        assert listed.code == 0, listed
        where = {(i["cluster"], i["namespace"], i["name"]) for i in listed.json()["items"]}
        assert {(DEV1, "research", here), (DEV2, "queued", there)} <= where, where
        (warning,) = listed.err_lines
        assert warning.startswith("ant: warning: ant cache http://127.0.0.1:1"), warning
        assert warning.endswith("reading from the API server"), warning

        # --context on the command line: that one cluster, with its section's namespace.
        one = clusters.ant("--context", DEV2, "list", "-o", "json", ANT_CONFIG=str(config))
        assert one.code == 0, one
        items = one.json()["items"]
        assert there in [i["name"] for i in items]
        assert {i["namespace"] for i in items} == {"queued"}
        assert all("cluster" not in i for i in one.json()["items"])
        found = clusters.ant("show", there, "-o", "json", ANT_CONFIG=str(config))
        assert (found.code, found.json()["cluster"]) == (0, DEV2), found
    finally:
        clusters.ant("--context", DEV2, "-n", "queued", "delete", "--yes", there)


def free_tpus(clusters: Clusters, context: str) -> int:
    doc = clusters.ant("--context", context, "queue", "-A", "--all-users", "-o", "json").json()
    (tpus,) = [c for c in doc["capacity"] if c["resource"] == "google.com/tpu"]
    return int(tpus["free"])


def test_a_sweep_spreads_over_the_clusters_and_is_listed_and_deleted_across_them(
    clusters: Clusters, devcluster: DevCluster, jobs: list[str]
) -> None:
    """dev-2 is filled but for one pod's TPUs: the sweep's first job takes them, the next
    one goes to dev-1 (where there is room); one sweep id over both, deleted across."""
    tpus, nodes = devcluster.tpus_per_node, devcluster.node_count
    wait_for("dev-2's TPUs all free", lambda: free_tpus(clusters, "admin@dev-2") == tpus * nodes)
    filler = unique("mc-filler")
    jobs.append(filler)
    filled = clusters.ant(
        "--context", "admin@dev-2", "-n", "research", "submit", "--name", filler,
        "--image", "busybox", "--replicas", str(nodes - 1), "--tpus", str(tpus), "--no-gang",
        "--", "sleep", "1h",
    )  # fmt: skip
    assert filled.code == 0, filled
    running = clusters.ant(
        "--context", "admin@dev-2", "-n", "research", "wait", filler, "--for", "running"
    )
    assert running.code == 0, running
    room_on_dev1 = free_tpus(clusters, "admin@dev-1") >= tpus

    order = "admin@dev-2,admin@dev-1"
    spread = unique("spread")
    argv = ["--clusters", order, "-n", "research", "submit", "--name", spread,
            "--image", "busybox", "--tpus", str(tpus), "--sweep", "x=a,b"]  # fmt: skip
    try:
        made = clusters.ant(*argv, "-o", "json", "--", "sleep", "1h")
        assert made.code == 0, made
        document = made.json()
        sweep_id = document["id"]
        items = document["items"]
        assert (items[0]["params"], items[0]["cluster"]) == ({"x": "a"}, "admin@dev-2")
        if room_on_dev1:  # as good as always: dev-1's jobs are other tests' and short-lived
            assert (items[1]["params"], items[1]["cluster"]) == ({"x": "b"}, "admin@dev-1")
            assert "placing 1 job(s) in admin@dev-2: 1 fit now, 0 wait in its queue" in made.err
            assert "placing 1 job(s) in admin@dev-1: 1 fit now, 0 wait in its queue" in made.err
        else:
            assert "placing 2 job(s) in admin@dev-2: 1 fit now, 1 wait in its queue" in made.err
        for item in items:  # each where the placement put it, and recorded so
            shown = clusters.ant(
                "--context", item["cluster"], "-n", "research", "show", item["name"], "-o", "json"
            )
            assert shown.code == 0, shown
            assert shown.json()["annotations"]["ant.dev/placement"].startswith(item["cluster"])

        listed = clusters.ant("--clusters", order, "-n", "research", "list", "--sweep", sweep_id,
                              "-o", "json")  # fmt: skip
        assert listed.code == 0, listed
        assert sorted((i["cluster"], i["name"]) for i in listed.json()["items"]) == sorted(
            (i["cluster"], i["name"]) for i in items
        )
        deleted = clusters.ant(
            "--clusters", order, "-n", "research", "delete", "--sweep", sweep_id, "--yes"
        )
        assert deleted.code == 0, deleted
        assert sorted(deleted.out.splitlines()) == sorted(
            f"job/{i['cluster']}/{i['name']} deleted" for i in items
        )
        after = clusters.ant("--clusters", order, "-n", "research", "list", "--sweep", sweep_id,
                             "-o", "json")  # fmt: skip
        assert [i for i in after.json()["items"] if i["status"] != "Terminating"] == []
    finally:  # whatever the sweep left, wherever (its names start with its --name)
        for context in ("admin@dev-1", "admin@dev-2"):
            listed = clusters.ant(
                "--context", context, "-n", "research", "list", "--all-users", "-o", "name"
            )
            mine = [n for n in listed.out.split() if n.startswith(f"{spread}-")]
            if mine:
                clusters.ant("--context", context, "-n", "research", "delete", "--yes", *mine)
