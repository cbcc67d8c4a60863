"""Updates and rollouts of OnDelete StatefulSets (docs/rollout.md).

A job's StatefulSet uses ``updateStrategy: OnDelete``: changing its pod template
(``update``, ``rollback``) only makes a new revision, ``status.updateRevision``.
Nothing restarts until ant deletes a pod; the controller then recreates it on the
update revision. ``run`` decides which pods go, when:

- **Planning is pure.** ``plan(sts, pods, options)`` turns what the cluster shows into
  batches; it needs no cluster and is unit-tested on its own.
- **Every step re-observes.** The executor keeps the pods in a ``PodTracker`` (one LIST,
  then WATCH requests that resume from the last resourceVersion) and re-plans from it
  before each batch; it never polls pod by pod.
- **The budget.** ``--max-unavailable`` bounds the job's unavailable pods (missing,
  terminating or not Ready), whatever made them so: pods already down count against it.
  Replacing a pod that is already unavailable costs nothing, so those go first.
  ``--batch-size`` is a fixed number of pods replaced at a time (the rollout's own pods
  still coming back fill its slots).
- **At most one deletion per pod and revision.** A pod on the update revision is never
  deleted; a terminating or missing pod is only waited for; every DELETE carries the
  pod's uid as a precondition, so a pod already replaced (by anyone) is never deleted.
- **Resumable.** There is no local state: pods carry their revision, the StatefulSet
  carries the rollout's annotations (``schema.ROLLOUT_*``). Running the same rollout
  again after any interruption, ``kill -9`` included, carries on where it stopped.
- **No printing.** Progress goes to a callback; failures are ``ant.errors`` exceptions
  (``RolloutPaused`` when a pod does not become Ready in time).

Modules: ``options`` (flags), ``planner`` (pure plan), ``revisions`` (the StatefulSet and
its ControllerRevisions), ``changes`` (update and rollback), ``status``, ``executor``.
Callers import from this package; the names below are its interface.
"""

from ant.jobs.rollout.changes import (
    TemplateChange,
    UpdateResult,
    _choose_revision,
    apply_change,
    merge_patch,
    rollback,
    template_diff,
    update,
)
from ant.jobs.rollout.executor import RolloutProgress, RolloutResult, run
from ant.jobs.rollout.options import (
    Budget,
    RolloutOptions,
    format_indexes,
    parse_budget,
    parse_replicas,
    parse_target,
)
from ant.jobs.rollout.planner import RolloutPlan, plan
from ant.jobs.rollout.revisions import Revision, load, pod_selector, utc_now, wait_observed
from ant.jobs.rollout.status import RolloutStatus, rollout_status, status

__all__ = [
    "Budget",
    "Revision",
    "RolloutOptions",
    "RolloutPlan",
    "RolloutProgress",
    "RolloutResult",
    "RolloutStatus",
    "TemplateChange",
    "UpdateResult",
    "_choose_revision",
    "apply_change",
    "format_indexes",
    "load",
    "merge_patch",
    "parse_budget",
    "parse_replicas",
    "parse_target",
    "plan",
    "pod_selector",
    "rollback",
    "rollout_status",
    "run",
    "status",
    "template_diff",
    "update",
    "utc_now",
    "wait_observed",
]
