"""How a job ends: its policy (set at submit) and its record (written by the controller).

Both live in the StatefulSet's labels and annotations (``ant.jobs.schema``,
docs/metadata.md); this module only reads and writes those values. What the controller
does with them is ``ant.jobs.transitions``; docs/controller.md tells the whole story.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ant.jobs import schema

# The restart log keeps the newest entries only: annotations have a size limit.
RESTART_LOG_LIMIT = 20


@dataclass(frozen=True)
class Policy:
    max_restarts: int = schema.DEFAULT_MAX_RESTARTS
    on_failure: str = schema.DEFAULT_ON_FAILURE
    after: tuple[str, ...] = ()
    ttl_seconds: int = schema.DEFAULT_TTL_SECONDS

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, str]) -> Policy:
        if not any(key in annotations for key in _POLICY_KEYS):  # most jobs: the defaults
            return _DEFAULT_POLICY
        on_failure = annotations.get(schema.ON_FAILURE, "")
        if on_failure not in schema.ON_FAILURE_POLICIES:
            on_failure = schema.DEFAULT_ON_FAILURE
        after = annotations.get(schema.AFTER, "")
        return cls(
            max_restarts=_int(annotations.get(schema.MAX_RESTARTS), schema.DEFAULT_MAX_RESTARTS),
            on_failure=on_failure,
            after=tuple(n for n in after.split(",") if n),
            ttl_seconds=_int(annotations.get(schema.TTL), schema.DEFAULT_TTL_SECONDS),
        )


@dataclass(frozen=True)
class Exit:
    """A replica that ended: its main container's exit code and when."""

    exit_code: int
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"exitCode": self.exit_code, "at": self.at}


@dataclass(frozen=True)
class Restart:
    """One restart the controller made, and why."""

    at: str
    reason: str
    replica: int | None = None
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "reason": self.reason,
            "replica": self.replica,
            "exitCode": self.exit_code,
        }


@dataclass(frozen=True)
class Record:
    """What the controller wrote about a job so far."""

    phase: str = ""  # "", Succeeded or Failed
    restarts: int = 0
    restart_log: tuple[Restart, ...] = ()
    replaced_pods: frozenset[str] = frozenset()
    exits: Mapping[int, Exit] = field(default_factory=dict)
    finished_at: str = ""
    failure: str = ""
    failed_replica: int | None = None
    replicas: int | None = None  # before the finished job was scaled to 0
    released_at: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in schema.PHASES

    @classmethod
    def from_metadata(cls, labels: Mapping[str, str], annotations: Mapping[str, str]) -> Record:
        # A job the controller wrote nothing about yet (most of a long list): the empty
        # record, without parsing absent annotations (a list of thousands felt it).
        if schema.PHASE not in labels and not any(key in annotations for key in _RECORD_KEYS):
            return _NO_RECORD
        phase = labels.get(schema.PHASE, "")
        failed_replica = annotations.get(schema.FAILED_REPLICA)
        replicas = annotations.get(schema.REPLICAS)
        return cls(
            phase=phase if phase in schema.PHASES else "",
            restarts=_int(annotations.get(schema.RESTARTS), 0),
            restart_log=tuple(_restarts(_json(annotations.get(schema.RESTART_LOG), []))),
            replaced_pods=frozenset(
                str(u) for u in _json(annotations.get(schema.REPLACED_PODS), [])
            ),
            exits=_exits(_json(annotations.get(schema.EXITS), {})),
            finished_at=annotations.get(schema.FINISHED_AT, ""),
            failure=annotations.get(schema.FAILURE, ""),
            failed_replica=_int(failed_replica, 0) if failed_replica else None,
            replicas=_int(replicas, 0) if replicas else None,
            released_at=annotations.get(schema.RELEASED_AT, ""),
        )


_POLICY_KEYS = (schema.ON_FAILURE, schema.AFTER, schema.MAX_RESTARTS, schema.TTL)
_DEFAULT_POLICY = Policy()
_RECORD_KEYS = (
    schema.RESTARTS,
    schema.RESTART_LOG,
    schema.REPLACED_PODS,
    schema.EXITS,
    schema.FINISHED_AT,
    schema.FAILURE,
    schema.FAILED_REPLICA,
    schema.REPLICAS,
    schema.RELEASED_AT,
)
_NO_RECORD = Record()


def exits_value(exits: Mapping[int, Exit]) -> str:
    """The ``ant.dev/exits`` annotation: replicas in order."""
    return _dump({str(i): exits[i].to_json() for i in sorted(exits)})


def restart_log_value(log: Sequence[Restart]) -> str:
    return _dump([r.to_json() for r in log[-RESTART_LOG_LIMIT:]])


def replaced_pods_value(uids: Sequence[str]) -> str:
    return _dump(sorted(uids))


def now_text(now: datetime | None = None) -> str:
    """RFC 3339 UTC, seconds, as ant writes times."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        value = json.loads(text)
    except ValueError:
        return default  # hand-edited into nonsense: start over rather than crash
    return value if isinstance(value, type(default)) else default


def _restarts(items: list[Any]) -> list[Restart]:
    out = []
    for item in items:
        if isinstance(item, dict):
            replica, code = item.get("replica"), item.get("exitCode")
            out.append(
                Restart(
                    at=str(item.get("at", "")),
                    reason=str(item.get("reason", "")),
                    replica=replica if isinstance(replica, int) else None,
                    exit_code=code if isinstance(code, int) else None,
                )
            )
    return out


def _exits(items: dict[str, Any]) -> dict[int, Exit]:
    out = {}
    for key, item in items.items():
        if key.isdigit() and isinstance(item, dict) and isinstance(item.get("exitCode"), int):
            out[int(key)] = Exit(item["exitCode"], str(item.get("at", "")))
    return out


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default
