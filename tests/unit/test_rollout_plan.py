"""ant.jobs.rollout without a cluster: the planner (budgets, canaries, order, pods already
down), flag parsing, template changes and the status rules; `ant rollout`/`update` flags
that fail before any cluster is contacted."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant.cli.environment import Environment
from ant.cli.main import run
from ant.errors import ExitCode, NotFoundError, UsageError, ValidationError
from ant.jobs import documents
from ant.jobs import rollout as ro
from ant.jobs.rollout import Budget, RolloutOptions, TemplateChange, plan
from ant.kube.convert import to_message
from ant.kube.proto import apps_v1_pb2, core_v1_pb2

JOB, UID = "bert", "sts-uid"
NEW, OLD, OLDER = "bert-7f9c", "bert-5d2a", "bert-1a1a"


def statefulset(
    replicas: int = 12, *, annotations: dict[str, str] | None = None, uid: str = UID
) -> Any:
    return to_message(
        {
            "metadata": {
                "name": JOB,
                "namespace": "research",
                "uid": uid,
                "annotations": annotations or {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"ant.dev/job": JOB, "ant.dev/managed-by": "ant"}},
                "updateStrategy": {"type": "OnDelete"},
            },
            "status": {"updateRevision": NEW, "currentRevision": OLD},
        },
        apps_v1_pb2.StatefulSet,
    )


def pod(
    index: int,
    revision: str = OLD,
    *,
    ready: bool = True,
    terminating: bool = False,
    owner: str = UID,
    unschedulable: bool = False,
) -> Any:
    conditions: list[dict[str, Any]] = [
        {"type": "Ready", "status": "True" if ready else "False"},
    ]
    if unschedulable:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/8 nodes are available: 8 Insufficient example.com/none.",
            }
        )
    metadata: dict[str, Any] = {
        "name": f"{JOB}-{index}",
        "namespace": "research",
        "uid": f"{JOB}-{index}-{revision}",
        "labels": {
            "ant.dev/job": JOB,
            "controller-revision-hash": revision,
            "apps.kubernetes.io/pod-index": str(index),
        },
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": JOB,
                "uid": owner,
                "controller": True,
            }
        ],
    }
    if terminating:
        metadata["deletionTimestamp"] = "2026-11-24T15:00:00Z"
    return to_message(
        {
            "metadata": metadata,
            "spec": {"nodeName": "" if unschedulable else "tpu-node-0"},
            "status": {
                "phase": "Pending" if unschedulable else "Running",
                "conditions": conditions,
            },
        },
        core_v1_pb2.Pod,
    )


def pods(n: int = 12, revision: str = OLD, **overrides: Any) -> list[Any]:
    """n Ready pods on ``revision``; ``overrides`` maps "i" -> a pod (or None: missing)."""
    out = []
    for i in range(n):
        if str(i) in overrides:
            if overrides[str(i)] is not None:
                out.append(overrides[str(i)])
        else:
            out.append(pod(i, revision))
    return out


def batches(p: ro.RolloutPlan) -> list[list[int]]:
    return [[s.index for s in batch] for batch in p.batches]


def options(**kw: Any) -> RolloutOptions:
    return RolloutOptions(**kw)


# ---- flags -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", {0}),
        ("0,3,5-7", {0, 3, 5, 6, 7}),
        ("5-7,6", {5, 6, 7}),
        (" 1 , 2 ", {1, 2}),
        ("4-4", {4}),
    ],
)
def test_parse_replicas(text: str, expected: set[int]) -> None:
    assert ro.parse_replicas(text) == frozenset(expected)


@pytest.mark.parametrize("text", ["", "a", "3-1", "-1", "1,,2", "1-", "1-2-3", "0x3", "1.5"])
def test_bad_replica_ranges_are_usage_errors(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        ro.parse_replicas(text)
    assert err.value.exit_code == ExitCode.USAGE
    assert "--replicas" in str(err.value)


@given(st.sets(st.integers(min_value=0, max_value=300)))
def test_format_indexes_is_the_inverse_of_parse_replicas(indexes: set[int]) -> None:
    text = ro.format_indexes(indexes)
    assert (ro.parse_replicas(text) if text else frozenset()) == frozenset(indexes)


def test_format_indexes_compacts_runs() -> None:
    assert ro.format_indexes([7, 0, 1, 2, 5, 6]) == "0-2,5-7"


@pytest.mark.parametrize(
    ("text", "budget", "replicas", "resolved"),
    [
        ("3", Budget(3), 12, 3),
        ("25%", Budget(25, percent=True), 12, 3),
        ("10%", Budget(10, percent=True), 5, 1),  # rounded down, but at least 1
        ("33%", Budget(33, percent=True), 200, 66),
        ("100%", Budget(100, percent=True), 7, 7),
    ],
)
def test_parse_budget(text: str, budget: Budget, replicas: int, resolved: int) -> None:
    assert ro.parse_budget(text) == budget
    assert budget.resolve(replicas) == resolved
    assert str(budget) == text


@pytest.mark.parametrize("text", ["0", "0%", "101%", "x", "-1", "3.5", "%", ""])
def test_bad_budgets_are_usage_errors(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        ro.parse_budget(text)
    assert err.value.exit_code == ExitCode.USAGE


def test_batch_size_and_max_unavailable_exclude_each_other() -> None:
    with pytest.raises(UsageError):
        RolloutOptions(max_unavailable=Budget(1), batch_size=2)
    with pytest.raises(ValidationError):
        RolloutOptions(batch_size=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bert", ("bert", False)),
        ("statefulset/web", ("web", True)),
        ("sts/web", ("web", True)),
        ("StatefulSet.apps/web", ("web", True)),
    ],
)
def test_parse_target(text: str, expected: tuple[str, bool]) -> None:
    assert ro.parse_target(text) == expected


@pytest.mark.parametrize("text", ["deployment/web", "statefulset/", "sts/a/b"])
def test_parse_target_refuses_other_kinds(text: str) -> None:
    with pytest.raises(UsageError):
        ro.parse_target(text)


# ---- the planner --------------------------------------------------------------------


def test_default_is_one_pod_at_a_time_highest_replica_first() -> None:
    p = plan(statefulset(), pods(), options())
    assert batches(p) == [[i] for i in range(11, -1, -1)]
    assert p.limit == 1
    assert p.now
    assert not p.blocked
    assert not p.complete
    assert p.updated == 0
    assert len(p.to_replace) == 12


def test_max_unavailable_makes_batches_of_that_size() -> None:
    p = plan(statefulset(), pods(), options(max_unavailable=Budget(3)))
    assert batches(p) == [[11, 10, 9], [8, 7, 6], [5, 4, 3], [2, 1, 0]]
    assert p.limit_text == "at most 3 unavailable"


def test_percentage_of_replicas_rounds_down() -> None:
    p = plan(statefulset(), pods(), options(max_unavailable=Budget(30, percent=True)))
    assert p.limit == 3  # 3.6 -> 3
    assert [len(b) for b in batches(p)] == [3, 3, 3, 3]
    assert "30% of 12" in p.limit_text


def test_ascending_order() -> None:
    p = plan(statefulset(), pods(), options(max_unavailable=Budget(5), order="ascending"))
    assert batches(p) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


def test_batch_size_is_a_fixed_batch() -> None:
    p = plan(statefulset(), pods(), options(batch_size=5))
    assert batches(p) == [[11, 10, 9, 8, 7], [6, 5, 4, 3, 2], [1, 0]]
    assert p.limit_text == "batches of 5"


def test_pods_on_the_update_revision_are_never_planned() -> None:
    current = pods(**{str(i): pod(i, NEW) for i in (0, 5, 11)})
    p = plan(statefulset(), current, options(max_unavailable=Budget(4)))
    planned = [i for b in batches(p) for i in b]
    assert sorted(planned) == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert p.updated == 3


def test_complete_when_every_pod_is_ready_on_the_update_revision() -> None:
    p = plan(statefulset(), pods(revision=NEW), options())
    assert p.complete
    assert not p.batches
    assert p.updated == 12


def test_not_complete_while_an_updated_pod_is_not_ready() -> None:
    p = plan(statefulset(), pods(revision=NEW, **{"3": pod(3, NEW, ready=False)}), options())
    assert not p.batches
    assert not p.complete
    assert [s.name for s in p.waiting_for] == ["bert-3"]


def test_pods_already_unavailable_count_against_the_budget() -> None:
    # bert-5 is on the new revision but not Ready: 1 of the 3 is used.
    current = pods(**{"5": pod(5, NEW, ready=False)})
    p = plan(statefulset(), current, options(max_unavailable=Budget(3)))
    assert batches(p)[0] == [11, 10]
    # Later batches assume it recovers (it is on its way to the target).
    assert batches(p)[1] == [9, 8, 7]
    assert [s.name for s in p.unavailable] == ["bert-5"]


def test_unavailable_old_pods_go_first_and_cost_nothing() -> None:
    # bert-4 is down on the old revision: replacing it does not lower availability.
    current = pods(**{"4": pod(4, OLD, ready=False)})
    p = plan(statefulset(), current, options(max_unavailable=Budget(3)))
    assert batches(p)[0] == [4, 11, 10]
    assert all(len(b) <= 3 for b in batches(p))


def test_missing_and_terminating_pods_are_waited_for_never_deleted() -> None:
    # bert-11 was deleted (not recreated yet), bert-10 is terminating: budget 2 is used up.
    current = pods(**{"11": None, "10": pod(10, OLD, terminating=True)})
    p = plan(statefulset(), current, options(max_unavailable=Budget(2)))
    assert not p.now
    assert p.next_batch == ()
    planned = {i for b in batches(p) for i in b}
    assert not planned & {10, 11}
    assert batches(p)[0] == [9, 8]  # once they are back
    assert {s.name for s in p.unavailable} == {"bert-11", "bert-10"}


def test_batch_size_counts_the_rollouts_own_pods_coming_back() -> None:
    # A resumed run: bert-11 was replaced and is starting; a batch of 3 has 2 slots left.
    current = pods(**{"11": pod(11, NEW, ready=False)})
    p = plan(statefulset(), current, options(batch_size=3))
    assert batches(p)[0] == [10, 9]


def test_batch_size_ignores_pods_down_outside_the_rollout() -> None:
    current = pods(**{"3": pod(3, OLD, ready=False)})
    p = plan(statefulset(), current, options(batch_size=2, replicas=frozenset({10, 11})))
    assert batches(p) == [[11, 10]]


def test_canary_replicas_only() -> None:
    p = plan(statefulset(), pods(), options(replicas=frozenset({0, 1}), max_unavailable=Budget(3)))
    assert batches(p) == [[1, 0]]
    assert p.selected == (0, 1)


def test_canary_ranges() -> None:
    chosen = ro.parse_replicas("0,3,5-7")
    p = plan(statefulset(), pods(), options(replicas=chosen, max_unavailable=Budget(2)))
    assert batches(p) == [[7, 6], [5, 3], [0]]


def test_replicas_out_of_range_are_usage_errors() -> None:
    with pytest.raises(ValidationError) as err:
        plan(statefulset(), pods(), options(replicas=frozenset({3, 12, 13})))
    assert err.value.exit_code == ExitCode.USAGE
    assert "12-13 out of range" in str(err.value)
    assert "0-11" in str(err.value)


def test_unavailable_pods_outside_the_selection_can_block_the_rollout() -> None:
    current = pods(**{"7": pod(7, OLD, ready=False, unschedulable=True)})
    p = plan(statefulset(), current, options(replicas=frozenset({0, 1})))
    assert p.batches == ()
    assert p.blocked
    assert not p.complete
    assert "bert-7" in p.blocked
    assert "Unschedulable" in p.blocked


def test_given_up_pods_keep_their_share_of_the_budget() -> None:
    stuck = pod(11, NEW, ready=False, unschedulable=True)
    current = pods(**{"11": stuck})
    p = plan(
        statefulset(),
        current,
        options(max_unavailable=Budget(2)),
        failed=frozenset({stuck.metadata.uid}),
    )
    assert [len(b) for b in batches(p)] == [1] * 11
    assert not p.waiting_for  # given up: not waited for any more


def test_pods_of_another_owner_are_not_the_jobs() -> None:
    stranger = pod(3, OLD, owner="someone-else")
    p = plan(statefulset(), pods(**{"3": stranger}), options(max_unavailable=Budget(12)))
    assert 3 not in {i for b in batches(p) for i in b}
    assert not p.pods[3].exists


def test_zero_replicas_is_complete() -> None:
    assert plan(statefulset(0), [], options()).complete


@settings(max_examples=300, deadline=None)
@given(
    states=st.lists(
        st.sampled_from(["old", "old-down", "new", "new-down", "missing", "terminating"]),
        min_size=1,
        max_size=30,
    ),
    limit=st.integers(min_value=1, max_value=8),
    fixed=st.booleans(),
    order=st.sampled_from(["ascending", "descending"]),
)
def test_first_batch_never_exceeds_the_budget(
    states: list[str], limit: int, fixed: bool, order: Any
) -> None:
    made = {
        "old": lambda i: pod(i, OLD),
        "old-down": lambda i: pod(i, OLD, ready=False),
        "new": lambda i: pod(i, NEW),
        "new-down": lambda i: pod(i, NEW, ready=False),
        "missing": lambda i: None,
        "terminating": lambda i: pod(i, OLD, terminating=True),
    }
    current = [p for i, s in enumerate(states) if (p := made[s](i)) is not None]
    opts = (
        options(batch_size=limit, order=order)
        if fixed
        else options(max_unavailable=Budget(limit), order=order)
    )
    p = plan(statefulset(len(states)), current, opts)
    planned = [i for b in batches(p) for i in b]
    # Each old, live pod exactly once (unless blocked); nothing else ever.
    old = {i for i, s in enumerate(states) if s in ("old", "old-down")}
    assert len(planned) == len(set(planned))
    assert set(planned) <= old
    assert set(planned) == old or p.blocked
    first = p.next_batch
    if fixed:
        assert len(first) <= limit
    else:
        down = {i for i, s in enumerate(states) if s not in ("old", "new")}
        after = down | {s.index for s in first}
        assert len(after) <= max(limit, len(down))


# ---- template changes ---------------------------------------------------------------

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"ant.dev/job": JOB}},
    "spec": {
        "containers": [
            {
                "name": "main",
                "image": "train:1",
                "command": ["python", "train.py"],
                "args": ["--lr", "1"],
                "env": [{"name": "ANT_JOB", "value": JOB}, {"name": "LR", "value": "1"}],
                "workingDir": "",
            },
            {"name": "sidecar", "image": "log:1"},
        ],
        "priorityClassName": "ant-normal",
    },
}


def test_apply_change_sets_image_env_and_command_on_main() -> None:
    change = TemplateChange(
        image="train:2",
        env={"LR": "3e-4", "NEW": "x"},
        unset_env=("ANT_JOB",),
        command=("python", "new.py"),
    )
    after = ro.apply_change(TEMPLATE, change)
    main = after["spec"]["containers"][0]
    assert main["image"] == "train:2"
    assert main["command"] == ["python", "new.py"]
    assert "args" not in main
    assert main["env"] == [{"name": "LR", "value": "3e-4"}, {"name": "NEW", "value": "x"}]
    assert after["spec"]["containers"][1] == {"name": "sidecar", "image": "log:1"}
    assert TEMPLATE["spec"]["containers"][0]["image"] == "train:1"  # untouched


def test_apply_change_merges_a_file_fragment_first() -> None:
    fragment = {
        "metadata": {"annotations": {"a": "b"}},
        "spec": {
            "containers": [
                {"name": "main", "resources": {"limits": {"example.com/none": "1"}}, "image": "x"}
            ]
        },
    }
    after = ro.apply_change(TEMPLATE, TemplateChange(pod_template=fragment, image="train:3"))
    main = after["spec"]["containers"][0]
    assert main["resources"] == {"limits": {"example.com/none": "1"}}
    assert main["image"] == "train:3"  # flags win over the file
    assert main["env"] == TEMPLATE["spec"]["containers"][0]["env"]
    assert after["metadata"] == {"labels": {"ant.dev/job": JOB}, "annotations": {"a": "b"}}


def test_unsetting_an_env_var_that_is_not_set_is_an_error() -> None:
    with pytest.raises(ValidationError, match="NOPE is not set"):
        ro.apply_change(TEMPLATE, TemplateChange(unset_env=("NOPE",)))


def test_containers_without_main_need_a_single_container() -> None:
    single = {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}
    assert (
        ro.apply_change(single, TemplateChange(image="nginx:2"))["spec"]["containers"][0]["image"]
        == "nginx:2"
    )
    two = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    with pytest.raises(ValidationError, match="none is called main"):
        ro.apply_change(two, TemplateChange(image="x"))


def test_merge_patch_has_only_what_changed() -> None:
    after = ro.apply_change(TEMPLATE, TemplateChange(image="train:2"))
    patch = ro.merge_patch(TEMPLATE, after)
    assert set(patch) == {"spec"}
    assert set(patch["spec"]) == {"containers"}
    assert ro.merge_patch(TEMPLATE, TEMPLATE) == {}
    assert ro.merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}) == {"a": {"c": None}}
    assert ro.merge_patch({"a": 1}, {"a": 1, "b": {"c": 2}}) == {"b": {"c": 2}}


def test_template_diff_is_a_unified_diff_without_empty_fields() -> None:
    after = ro.apply_change(TEMPLATE, TemplateChange(image="train:2"))
    diff = ro.template_diff(TEMPLATE, after, JOB)
    assert "-    image: train:1\n" in diff
    assert "+    image: train:2\n" in diff
    assert "workingDir" not in diff
    assert ro.template_diff(TEMPLATE, TEMPLATE, JOB) == ""


def test_change_description_is_recorded_in_words() -> None:
    change = TemplateChange(
        image="train:2",
        env={"A": "1"},
        unset_env=("B",),
        command=("python", "x y.py"),
        pod_template={"spec": {}},
        pod_template_source="f.yaml",
        meta={"k": "v"},
    )
    assert change.describe() == [
        "podTemplate from f.yaml",
        "image train:2",
        "env A=1",
        "unset env B",
        "command python 'x y.py'",
        "meta k=v",
    ]
    assert TemplateChange().empty
    assert not change.empty


# ---- revisions and status -----------------------------------------------------------


def revision(name: str, number: int) -> ro.Revision:
    return ro.Revision(name=name, number=number, template={})


def test_rollback_picks_the_revision_before_the_update_revision() -> None:
    revs = [revision(OLDER, 1), revision(OLD, 2), revision(NEW, 3)]
    assert ro._choose_revision(JOB, revs, NEW, None).name == OLD
    assert ro._choose_revision(JOB, revs, NEW, 1).name == OLDER
    with pytest.raises(NotFoundError, match="no revision 9"):
        ro._choose_revision(JOB, revs, NEW, 9)
    with pytest.raises(NotFoundError, match="no revision before"):
        ro._choose_revision(JOB, [revision(NEW, 1)], NEW, None)


def status_of(current: Iterable[Any], **annotations: str) -> ro.RolloutStatus:
    revs = [revision(OLDER, 1), revision(OLD, 2), revision(NEW, 3)]
    return ro.rollout_status(statefulset(4, annotations=annotations), current, revs)


def test_status_counts_pods_per_revision() -> None:
    s = status_of(pods(4, **{"0": pod(0, NEW), "1": pod(1, NEW, ready=False)}))
    assert [(r.name, r.number, r.indexes, r.ready, r.update) for r in s.revisions] == [
        (NEW, 3, (0, 1), 1, True),
        (OLD, 2, (2, 3), 2, False),
        (OLDER, 1, (), 0, False),
    ]
    assert s.updated == 1
    assert s.state == "Pending"
    assert [p.name for p in s.unavailable] == ["bert-1"]
    doc = documents.rollout_status(s)
    assert doc["kind"] == "RolloutStatus"
    assert doc["revisions"][0]["replicas"] == "0-1"
    json.dumps(doc)


def test_status_states() -> None:
    assert status_of(pods(4, NEW)).state == "Complete"
    paused = status_of(
        pods(4),
        **{
            "ant.dev/rollout-target-revision": NEW,
            "ant.dev/rollout-paused": "2026-11-24T15:00:00Z pod bert-3 not Ready",
        },
    )
    assert paused.state == "Paused"
    assert paused.paused == "pod bert-3 not Ready"
    assert paused.paused_at == "2026-11-24T15:00:00Z"
    running = status_of(
        pods(4),
        **{
            "ant.dev/rollout-target-revision": NEW,
            "ant.dev/rollout-started-at": "2026-11-24T15:00:00Z",
        },
    )
    assert running.state == "Progressing"
    # A pause for an older target is stale: a new update came since.
    stale = status_of(
        pods(4),
        **{"ant.dev/rollout-target-revision": OLD, "ant.dev/rollout-paused": "x"},
    )
    assert stale.state == "Pending"


# ---- the CLI refuses bad flags before contacting any cluster -------------------------


def ant(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    env = Environment(stdin=io.StringIO(""), stdout=io.StringIO(), stderr=err, vars={})
    return run(list(argv), env=env), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rollout", "bert", "--replicas", "3-1"], "backwards range"),
        (["rollout", "bert", "--replicas", "x"], "not a replica"),
        (["rollout", "bert", "--max-unavailable", "0"], "at least 1"),
        (["rollout", "bert", "--max-unavailable", "1", "--batch-size", "2"], "together"),
        (["rollout", "bert", "--timeout", "soon"], "not a duration"),
        (["update", "bert", "--command"], "needs the command after"),
        (["update", "bert", "--image", "x", "--max-unavailable", "2"], "go with --rollout"),
    ],
)
def test_bad_flags_exit_2_without_a_cluster(argv: list[str], message: str) -> None:
    code, err = ant("--kubeconfig", "/nonexistent", *argv)
    assert code == ExitCode.USAGE, err
    assert message in err


def test_rollout_group_help_and_default_command() -> None:
    code, _ = ant("rollout", "--help")
    assert code == 0
    # `ant rollout JOB` is `ant rollout run JOB`: it gets as far as the (missing) kubeconfig.
    code, err = ant("--kubeconfig", "/nonexistent", "rollout", "bert", "--yes")
    assert code == ExitCode.USAGE
    assert "kubeconfig" in err.lower()
