"""ant: run and manage ML training jobs on Kubernetes StatefulSets.

The Python API (docs/python.md): ``ant.Client``, ``ant.Job``, ``ant.JobSpec`` and the
errors (``ant.AntError``, ...). Imported on first use, so ``import ant`` costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ant.api import Client
    from ant.errors import (
        AntError,
        ConflictError,
        ExitCode,
        JobExists,
        NotFoundError,
        NotOwner,
        RolloutPaused,
        UsageError,
        ValidationError,
    )
    from ant.jobs.model import Job, JobStatus
    from ant.jobs.spec import JobSpec

# Public name -> the module that defines it.
_LAZY = {
    "Client": "ant.api",
    "Job": "ant.jobs.model",
    "JobStatus": "ant.jobs.model",
    "JobSpec": "ant.jobs.spec",
    **dict.fromkeys(
        (
            "AntError",
            "ConflictError",
            "ExitCode",
            "JobExists",
            "NotFoundError",
            "NotOwner",
            "RolloutPaused",
            "UsageError",
            "ValidationError",
        ),
        "ant.errors",
    ),
}
__all__ = [
    "AntError",
    "Client",
    "ConflictError",
    "ExitCode",
    "Job",
    "JobExists",
    "JobSpec",
    "JobStatus",
    "NotFoundError",
    "NotOwner",
    "RolloutPaused",
    "UsageError",
    "ValidationError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ant' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
