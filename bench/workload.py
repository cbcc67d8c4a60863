"""Realistic training jobs, as ant would create them: one StatefulSet per job.

Deterministic: job ``i`` always has the same content (``random.Random(i)``), so a
re-seeded cluster and a previous run list the same bytes. Sizes mirror what ant puts on
a job: ~11 labels and ~15 annotations (about 3 KB of metadata) and a full pod template.

Pods run on bench-only kwok nodes: tainted so nothing else lands there, selected by a
nodeSelector so bench pods never land on the shared TPU pool, and no TPUs.
"""

from __future__ import annotations

import json
import random
from typing import Any

# Every bench object carries BENCH_LABEL=list and RUN_LABEL=<prefix>: the first says
# "made by the list bench", the second scopes a run (the smoke test uses its own prefix).
BENCH_LABEL = "ant.dev/bench"
BENCH_VALUE = "list"
RUN_LABEL = "ant.dev/bench-run"
NAMESPACES_PER_RUN = 10

# Bench nodes: label, taint and nodeSelector key (the TPU pool has none of them).
NODE_LABEL = "ant.dev/bench"
NODE_TAINT = {"key": "ant.dev/bench", "value": "true", "effect": "NoSchedule"}
PODS_PER_NODE = 1000
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

_FIRST = (
    "alice", "bob", "carol", "dmitri", "elena", "farah", "gustavo", "hana", "ivan", "jun",
    "kavya", "liam", "mei", "nadia", "omar", "priya", "quinn", "rafael", "sofia", "tomas",
)  # fmt: skip
_LAST = ("chen", "garcia", "kim", "novak", "okafor")
# 100 users: 20 first names x 5 last names.
USERS = tuple(f"{first}-{last}" for last in _LAST for first in _FIRST)

TEAMS = {
    "llm-pretrain": ("dense-scaling", "moe-scaling", "long-context"),
    "llm-posttrain": ("sft-mix", "rlhf-ppo", "dpo-sweep"),
    "vision": ("vit-pretrain", "seg-finetune"),
    "speech": ("asr-conformer", "tts-flow"),
    "multimodal": ("vlm-align", "video-tokenizer"),
    "evals": ("harness-regress",),
}
PRIORITIES = ("low", "medium", "high")
REGIONS = ("us-central2", "us-east5", "europe-west4")


def namespace_of(prefix: str, index: int) -> str:
    return f"{prefix}-{index % NAMESPACES_PER_RUN}"


def job_name(index: int) -> str:
    """``<user>-<project>-<index>``: at most 36 characters (StatefulSet names must stay
    short enough for their pods' controller-revision-hash label)."""
    return str(_job("", index)["name"])


def index_of(name: str) -> int | None:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _team_project(rng: random.Random) -> tuple[str, str]:
    team = rng.choice(sorted(TEAMS))
    return team, rng.choice(TEAMS[team])


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _hyperparameters(rng: random.Random) -> dict[str, Any]:
    d_model = rng.choice((1024, 2048, 4096, 8192))
    return {
        "learning_rate": rng.choice((1e-4, 3e-4, 6e-4, 1e-3)),
        "min_learning_rate_ratio": 0.1,
        "schedule": rng.choice(("cosine", "wsd", "linear")),
        "warmup_steps": rng.choice((500, 2000, 5000)),
        "total_steps": rng.choice((50_000, 100_000, 250_000)),
        "global_batch_size": rng.choice((256, 512, 1024, 2048)),
        "seq_len": rng.choice((2048, 4096, 8192, 32768)),
        "optimizer": {"name": "adamw", "beta1": 0.9, "beta2": 0.95, "eps": 1e-8},
        "weight_decay": 0.1,
        "grad_clip_norm": 1.0,
        "precision": "bf16",
        "model": {
            "d_model": d_model,
            "n_layers": rng.choice((24, 32, 48, 64)),
            "n_heads": d_model // 128,
            "vocab_size": 128_256,
            "rope_theta": 500_000,
        },
        "mesh": {"data": rng.choice((1, 2, 4)), "fsdp": rng.choice((4, 8, 16)), "tensor": 1},
        "data_mix": {
            "web": round(rng.uniform(0.4, 0.7), 2),
            "code": round(rng.uniform(0.1, 0.3), 2),
            "math": round(rng.uniform(0.05, 0.15), 2),
            "books": 0.05,
        },
        "eval_every_steps": 1000,
        "checkpoint_every_steps": rng.choice((500, 1000, 2500)),
        "seed": rng.randrange(10_000),
    }


def _job(prefix: str, index: int) -> dict[str, Any]:
    """Everything about job ``index`` that its labels, annotations and template share."""
    rng = random.Random(index)
    team, project = _team_project(rng)
    user = USERS[index % len(USERS)]
    name = f"{user}-{project}-{index:05d}"
    commit = _hex(rng, 40)
    experiment = f"exp-{_hex(rng, 8)}"
    region = rng.choice(REGIONS)
    bucket = f"gs://ant-{team}-{region}"
    hparams = _hyperparameters(rng)
    return {
        "name": name,
        "namespace": namespace_of(prefix, index),
        "user": user,
        "team": team,
        "project": project,
        "commit": commit,
        "experiment": experiment,
        "region": region,
        "bucket": bucket,
        "hparams": hparams,
        "priority": rng.choice(PRIORITIES),
        "sweep": f"sweep-{_hex(rng, 6)}" if rng.random() < 0.4 else "",
        "image": f"us-docker.pkg.dev/ant-research/train/{team}:{commit[:12]}",
        "config": f"configs/{project}/{experiment}.yaml",
    }


def labels(prefix: str, job: dict[str, Any]) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "ant",
        "ant.dev/managed-by": "ant",  # what `ant list` selects on
        "ant.dev/job": job["name"],
        "ant.dev/created-by": job["user"],
        "ant.dev/priority": job["priority"],
        "ant.dev/team": job["team"],
        "ant.dev/project": job["project"],
        "ant.dev/experiment": job["experiment"],
        "ant.dev/sweep": job["sweep"] or "none",
        "ant.dev/accelerator": "tpu-v5p",
        BENCH_LABEL: BENCH_VALUE,
        RUN_LABEL: prefix,
    }


def _command_line(job: dict[str, Any]) -> list[str]:
    h = job["hparams"]
    return [
        "python",
        "-m",
        "train.main",
        f"--config={job['config']}",
        f"--model.d_model={h['model']['d_model']}",
        f"--model.n_layers={h['model']['n_layers']}",
        f"--optim.lr={h['learning_rate']}",
        f"--data.path={job['bucket']}/datasets/{job['project']}/v3",
        f"--checkpoint.dir={job['bucket']}/checkpoints/{job['name']}",
        f"--wandb.project={job['project']}",
        f"--seed={h['seed']}",
    ]


def job_annotations(job: dict[str, Any]) -> dict[str, str]:
    rng = random.Random(job["name"])
    description = (
        f"{job['project']}: {rng.choice(('ablate', 'scale up', 'retry', 'sweep'))} "
        f"{rng.choice(('learning rate', 'batch size', 'data mix', 'warmup', 'depth'))} "
        f"on {job['region']} after the {rng.choice(('loss spike', 'eval regression', 'review'))}"
        " in the weekly sync; compare against the baseline run and keep the last 3 checkpoints."
        f" Owner: {job['user']}. Expect ~{rng.randrange(2, 72)}h on {rng.choice((64, 128, 256))}"
        " chips; preemptible, resume from the latest checkpoint. Do not delete without asking."
    )
    return {
        "ant.dev/description": description,
        "ant.dev/command": " ".join(_command_line(job)),
        "ant.dev/hyperparameters": json.dumps(job["hparams"], sort_keys=True),
        "ant.dev/git-commit": job["commit"],
        "ant.dev/git-repo": f"https://github.com/ant-research/{job['team']}",
        "ant.dev/git-branch": f"{job['user'].split('-')[0]}/{job['project']}",
        "ant.dev/git-dirty": rng.choice(("true", "false")),
        "ant.dev/image": job["image"],
        "ant.dev/config": job["config"],
        "ant.dev/submitted-at": f"2026-11-{rng.randrange(1, 24):02d}T{rng.randrange(24):02d}:"
        f"{rng.randrange(60):02d}:00Z",
        "ant.dev/submitted-from": f"{job['user']}-workstation.corp.example.com",
        "ant.dev/ant-version": "0.1.0",
        "ant.dev/checkpoint-dir": f"{job['bucket']}/checkpoints/{job['name']}",
        "ant.dev/dashboard": f"https://wandb.example.com/ant/{job['project']}/runs/{job['name']}",
        "ant.dev/notify": f"#{job['team']}-runs",
    }


def _probe(handler: dict[str, Any], initial: int, period: int, failures: int) -> dict[str, Any]:
    return {
        **handler,
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _field_ref(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def _container(job: dict[str, Any]) -> dict[str, Any]:
    command = _command_line(job)
    env = [
        {"name": "ANT_JOB", "value": job["name"]},
        {"name": "ANT_EXPERIMENT", "value": job["experiment"]},
        {"name": "POD_NAME", **_field_ref("metadata.name")},
        {"name": "POD_NAMESPACE", **_field_ref("metadata.namespace")},
        {"name": "WANDB_PROJECT", "value": job["project"]},
        {"name": "WANDB_RUN_GROUP", "value": job["sweep"] or job["experiment"]},
        {"name": "JAX_COMPILATION_CACHE_DIR", "value": f"{job['bucket']}/jax-cache"},
        {"name": "XLA_FLAGS", "value": "--xla_dump_to=/tmp/xla --xla_dump_hlo_as_text"},
        {"name": "LIBTPU_INIT_ARGS", "value": "--xla_tpu_enable_async_collective_fusion=true"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    http = {"port": 8080, "scheme": "HTTP"}
    return {
        "name": "trainer",
        "image": job["image"],
        "imagePullPolicy": "IfNotPresent",
        "command": command[:3],
        "args": command[3:],
        "workingDir": "/workspace",
        "ports": [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "10Gi"},
            "limits": {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "20Gi"},
        },
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "train-config", "mountPath": "/etc/ant", "readOnly": True},
        ],
        "startupProbe": _probe({"tcpSocket": {"port": 8080}}, 10, 10, 60),
        "livenessProbe": _probe({"httpGet": {"path": "/healthz", **http}}, 60, 30, 5),
        "readinessProbe": _probe({"httpGet": {"path": "/ready", **http}}, 30, 10, 3),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def statefulset(prefix: str, index: int) -> dict[str, Any]:
    """The manifest of job ``index``: 1 replica, Parallel, OnDelete (as ant creates them)."""
    job = _job(prefix, index)
    job_labels = labels(prefix, job)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": job["name"],
            "namespace": job["namespace"],
            "labels": job_labels,
            "annotations": job_annotations(job),
        },
        "spec": {
            "replicas": 1,
            "serviceName": job["name"],
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"ant.dev/job": job["name"]}},
            "template": {
                "metadata": {
                    "labels": job_labels,
                    "annotations": {
                        "ant.dev/git-commit": job["commit"],
                        "ant.dev/config": job["config"],
                    },
                },
                "spec": {
                    "containers": [_container(job)],
                    "volumes": [
                        {"name": "scratch", "emptyDir": {"sizeLimit": "100Gi"}},
                        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}},
                        {
                            "name": "train-config",
                            "configMap": {"name": f"{job['project']}-config", "optional": True},
                        },
                    ],
                    "nodeSelector": {NODE_LABEL: "true"},
                    "tolerations": [
                        {**NODE_TAINT, "operator": "Equal"},
                        {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                    "terminationGracePeriodSeconds": 60,
                    "enableServiceLinks": False,
                },
            },
        },
    }


def node(prefix: str, index: int) -> dict[str, Any]:
    """A bench-only kwok node: room for PODS_PER_NODE bench pods, no TPUs, tainted."""
    name = f"{prefix}-node-{index}"
    capacity = {
        "cpu": str(8 * PODS_PER_NODE),
        "memory": f"{32 * PODS_PER_NODE}Gi",
        "ephemeral-storage": f"{20 * PODS_PER_NODE}Gi",
        "pods": str(PODS_PER_NODE),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                NODE_LABEL: "true",
                RUN_LABEL: prefix,
            },
            "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1]},
        },
        "spec": {"taints": [NODE_TAINT]},
        # kwok keeps what the node was created with (like a kubelet registering itself).
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def namespace(prefix: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": f"{prefix}-{index}",
            "labels": {BENCH_LABEL: BENCH_VALUE, RUN_LABEL: prefix},
        },
    }
