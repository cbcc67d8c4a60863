"""Exit codes are an interface: scripts branch on them. They match docs/cli.md exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ant import errors
from ant.errors import ExitCode, Status

DOCUMENTED = {
    "OK": 0,
    "ERROR": 1,
    "USAGE": 2,
    "NOT_FOUND": 3,
    "UNAUTHORIZED": 4,
    "CONFLICT": 5,
    "UNAVAILABLE": 6,
    "PAUSED": 7,
    "JOB_FAILED": 8,
    "NOT_OWNER": 9,
    "PARTIAL": 10,
    "TIMEOUT": 124,
    "INTERRUPTED": 130,
}

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_exit_codes_are_exactly_the_documented_ones() -> None:
    assert {c.name: c.value for c in ExitCode} == DOCUMENTED


def test_docs_cli_md_exit_code_table_matches_the_code() -> None:
    """The table in docs/cli.md ("| 3 | `NOT_FOUND` | ... |") lists every code, no other."""
    text = CLI_MD.read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([A-Z_]+)`\s*\|", section, flags=re.MULTILINE)
    assert {name: int(code) for code, name in rows} == DOCUMENTED


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.AntError("x"), 1),
        (errors.UsageError("x"), 2),
        (errors.ValidationError("name", "x"), 2),
        (errors.ConfigError("x"), 2),
        (errors.NotFoundError("x"), 3),
        (errors.ConflictError("x"), 5),
        (errors.JobExists("x"), 5),
        (errors.JobChanged("x"), 5),
        (errors.Aborted("x"), 1),
        (errors.RolloutPaused("x"), 7),
        (errors.JobFailed("x"), 8),
        (errors.NotOwner("x"), 9),
        (errors.PartialAnswer("x"), 10),
        (errors.WaitTimeout("x"), 124),
        (errors.DecodeError("x"), 1),
        (errors.TransportError("x"), 6),
        (errors.ConnectError("x"), 6),
        (errors.RequestTimeout("x"), 6),
    ],
)
def test_error_classes_map_to_their_exit_codes(error: errors.AntError, code: int) -> None:
    assert error.exit_code == code


@pytest.mark.parametrize(
    ("http", "reason", "cls", "code"),
    [
        (400, "BadRequest", errors.BadRequest, 2),
        (401, "Unauthorized", errors.Unauthorized, 4),
        (403, "Forbidden", errors.Forbidden, 4),
        (404, "NotFound", errors.NotFound, 3),
        (409, "Conflict", errors.Conflict, 5),
        (409, "AlreadyExists", errors.AlreadyExists, 5),
        (410, "Expired", errors.Gone, 1),
        (422, "Invalid", errors.Invalid, 2),
        (429, "TooManyRequests", errors.TooManyRequests, 6),
        (500, "InternalError", errors.ServerError, 1),
        (503, "ServiceUnavailable", errors.ServerError, 1),
        (504, "Timeout", errors.ServerTimeout, 6),
    ],
)
def test_api_statuses_map_to_exit_codes(
    http: int, reason: str, cls: type[errors.ApiError], code: int
) -> None:
    error = errors.api_error(Status(code=http, reason=reason, message="m"))
    assert type(error) is cls
    assert error.exit_code == code


def test_a_missing_object_is_a_not_found_error_either_way() -> None:
    """`except NotFoundError` catches both ant's own and the server's 404."""
    assert isinstance(errors.api_error(Status(code=404)), errors.NotFoundError)


def test_a_conflict_is_a_conflict_error_either_way() -> None:
    """`except ConflictError` catches both ant's own findings and the server's 409."""
    assert isinstance(errors.api_error(Status(code=409, reason="Conflict")), errors.ConflictError)
    assert isinstance(
        errors.api_error(Status(code=409, reason="AlreadyExists")), errors.ConflictError
    )
    assert not isinstance(errors.JobExists("x"), errors.ApiError)
