"""Every error ant raises, and the exit code each one means.

Lower layers (``ant.kube``, ``ant.jobs``, ``ant.cache``) raise these; only the
CLI turns them into one line on stderr and a process exit code. An ``ApiError``
carries the ``Status`` the API server answered; ant's own findings (a job exists, a
job changed under a rollout) are the classes beside it, never a made-up ``Status``.

    AntError ............................ 1  ERROR
    ├── UsageError ...................... 2  USAGE        bad flags, spec files, names
    │   └── ValidationError ............. 2  USAGE        a value fails a rule (names the field)
    │   └── GangUnavailable ............. 2  USAGE        the cluster stopped serving a gang engine
    ├── ConfigError ..................... 2  USAGE        kubeconfig / context / credentials setup
    ├── NotFoundError ................... 3  NOT_FOUND    a job or object ant looked for is absent
    ├── ConflictError ................... 5  CONFLICT     a write clashes with what is there
    │   ├── JobExists ................... 5  CONFLICT     a job of that name exists (submit, sweeps)
    │   ├── JobChanged .................. 5  CONFLICT     the job changed while ant was writing it
    │   └── RolloutHeld ................. 5  CONFLICT     another rollout of the job holds its lease
    ├── ApiError ........................ 1  ERROR        the API server answered with a Status
    │   ├── BadRequest (400) ............ 2  USAGE
    │   ├── Unauthorized (401) .......... 4  UNAUTHORIZED
    │   ├── Forbidden (403) ............. 4  UNAUTHORIZED
    │   ├── NotFound (404) .............. 3  NOT_FOUND    (also a NotFoundError)
    │   ├── NotAcceptable (406) / UnsupportedMediaType (415)
    │   ├── Conflict (409) .............. 5  CONFLICT     (also a ConflictError)
    │   │   └── AlreadyExists (409) ..... 5  CONFLICT
    │   ├── Gone (410) .................. 1  ERROR        expired resourceVersion/continue: relist
    │   ├── Invalid (422) ............... 2  USAGE        carries the field causes
    │   ├── TooManyRequests (429) ....... 6  UNAVAILABLE  carries Retry-After
    │   ├── ServerError (5xx) ........... 1  ERROR
    │   │   └── ServerTimeout (504) ..... 6  UNAVAILABLE  carries Retry-After
    ├── TransportError .................. 6  UNAVAILABLE  no HTTP answer at all
    │   ├── ConnectError ................ 6  UNAVAILABLE
    │   └── RequestTimeout .............. 6  UNAVAILABLE
    │       └── DeadlineExceeded ........ 6  UNAVAILABLE  the command's deadline passed: no retry
    ├── DecodeError ..................... 1  ERROR        a body ant cannot decode
    ├── Aborted ......................... 1  ERROR        the user said no at a prompt
    ├── SlotAtRisk ...................... 1  ERROR        a restart may hand the job's slot away
    ├── SlotLost ........................ 1  ERROR        a restarted replica waits Pending
    ├── RolloutPaused ................... 7  PAUSED       a rollout stopped on an unhealthy pod
    ├── JobFailed ....................... 8  JOB_FAILED   `ant wait`: a job failed or never can
    ├── NotOwner ........................ 9  NOT_OWNER    someone else's job, and no --force
    ├── PartialAnswer .................. 10  PARTIAL      some selected clusters did not answer
    ├── WaitTimeout ..................... 124 TIMEOUT    `ant wait --timeout` ran out
    ├── SweepFailed (ant.jobs.sweep) .... the code of the first failure; names what was created
    └── ReviewError (ant.cache.auth) .... 6  UNAVAILABLE  a token or access review failed (503)

The cache answers its callers with these too: ``ant.cache.server`` raises an
``ApiError`` whose ``Status`` becomes the reply (``ant.cache.server.wire.failure``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in docs/cli.md and stable for scripts."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAUTHORIZED = 4
    CONFLICT = 5
    UNAVAILABLE = 6
    PAUSED = 7
    JOB_FAILED = 8
    NOT_OWNER = 9
    PARTIAL = 10
    TIMEOUT = 124
    INTERRUPTED = 130


class AntError(Exception):
    """Root of every error ant raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AntError):
    exit_code = ExitCode.USAGE


class ValidationError(UsageError):
    """A value breaks a rule; ``field`` names where it came from (flag or spec path)."""

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field


class GangUnavailable(UsageError):
    """The cluster no longer serves the gang engine ant remembered it serving."""


class ConfigError(AntError):
    exit_code = ExitCode.USAGE


class NotFoundError(AntError):
    exit_code = ExitCode.NOT_FOUND


class ConflictError(AntError):
    """What ant was asked to write clashes with what the cluster holds."""

    exit_code = ExitCode.CONFLICT


class JobExists(ConflictError):
    """A job of that name already exists."""


class JobChanged(ConflictError):
    """The job changed while ant was writing it (update, rollback, a rollout)."""


class RolloutHeld(ConflictError):
    """Another rollout of the job holds its lease (or took it over from this one)."""


class Aborted(AntError):
    pass


class SlotAtRisk(AntError):
    """Restarting would free a slot that a waiting pod of equal or higher priority would
    take (ant.jobs.slots); the caller did not accept that risk."""


class SlotLost(AntError):
    """A restarted replica came back Pending: another pod took its slot."""


class RolloutPaused(AntError):
    exit_code = ExitCode.PAUSED


class JobFailed(AntError):
    """A job ``ant wait`` waits for failed, or can never reach the condition."""

    exit_code = ExitCode.JOB_FAILED


class WaitTimeout(AntError):
    exit_code = ExitCode.TIMEOUT


class NotOwner(AntError):
    """A write to another user's job that the caller did not force (ant.jobs.ownership)."""

    exit_code = ExitCode.NOT_OWNER


class PartialAnswer(AntError):
    """Some of the selected clusters did not answer: what the others said was shown."""

    exit_code = ExitCode.PARTIAL


class DecodeError(AntError):
    pass


class TransportError(AntError):
    exit_code = ExitCode.UNAVAILABLE


class ConnectError(TransportError):
    pass


class RequestTimeout(TransportError):
    pass


class DeadlineExceeded(RequestTimeout):
    """The command's overall deadline passed (``ant.kube.transport.Deadline``): final."""


@dataclass(frozen=True)
class StatusCause:
    """One entry of ``Status.details.causes``: which field was wrong and why."""

    field: str
    reason: str
    message: str


@dataclass(frozen=True)
class Status:
    """The parts of a ``meta.v1.Status`` that callers act on."""

    code: int
    reason: str = ""
    message: str = ""
    name: str = ""
    kind: str = ""
    retry_after_seconds: int = 0
    causes: tuple[StatusCause, ...] = field(default=())


class ApiError(AntError):
    """The API server answered with an error Status."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.message or status.reason or f"HTTP {status.code}")
        self.status = status

    @property
    def retry_after(self) -> float:
        return float(self.status.retry_after_seconds)


class BadRequest(ApiError):
    exit_code = ExitCode.USAGE


class Unauthorized(ApiError):
    exit_code = ExitCode.UNAUTHORIZED


class Forbidden(ApiError):
    exit_code = ExitCode.UNAUTHORIZED


class NotFound(ApiError, NotFoundError):
    exit_code = ExitCode.NOT_FOUND


class NotAcceptable(ApiError):
    pass


class UnsupportedMediaType(ApiError):
    pass


class Conflict(ApiError, ConflictError):
    exit_code = ExitCode.CONFLICT


class AlreadyExists(Conflict):
    pass


class Gone(ApiError):
    pass


class Invalid(ApiError):
    exit_code = ExitCode.USAGE

    def __str__(self) -> str:
        # The Status message already lists the causes; keep it to one line.
        return " ".join(self.message.split())


class TooManyRequests(ApiError):
    exit_code = ExitCode.UNAVAILABLE


class ServerError(ApiError):
    pass


class ServerTimeout(ServerError):
    exit_code = ExitCode.UNAVAILABLE


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    406: NotAcceptable,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
    504: ServerTimeout,
}


def api_error(status: Status) -> ApiError:
    """The exception class for a Status, by reason where the code is ambiguous."""
    if status.code == 409 and status.reason == "AlreadyExists":
        return AlreadyExists(status)
    cls = _BY_CODE.get(status.code)
    if cls is None:
        cls = ServerError if status.code >= 500 else ApiError
    return cls(status)
