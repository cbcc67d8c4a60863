"""ant.cache.selectors: label and field selectors as the API server reads them."""

from __future__ import annotations

import pytest

from ant.cache.selectors import parse_fields, parse_labels
from ant.errors import BadRequest

LABELS = {"app": "web", "tier": "front", "n": "5", "ant.dev/created-by": "alice"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("tier in (front, back)", True),
        ("tier in (back)", False),
        ("tier notin (back)", True),
        ("missing notin (x)", True),
        ("app=web,tier=back", False),
        ("n>4", True),
        ("n<4", False),
        ("app>4", False),
        ("ant.dev/created-by=alice, app = web", True),
    ],
)
def test_label_selectors_match_like_the_api_server(selector: str, matches: bool) -> None:
    assert parse_labels(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", ["a=b,", "=b", "a in x", "a b", "a=b=c", "a in (x", "-x=y"])
def test_invalid_label_selectors_are_bad_requests(selector: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_labels(selector)
    assert e.value.status.code == 400


def test_a_pinned_label_can_use_an_index() -> None:
    selector = parse_labels("ant.dev/managed-by=ant,ant.dev/created-by in (alice)")
    assert selector.pinned("ant.dev/created-by") == "alice"
    assert parse_labels("x in (a,b)").pinned("x") is None
    assert parse_labels("x!=a").pinned("x") is None


def test_field_selectors() -> None:
    supported = frozenset({"metadata.name", "status.phase"})
    selector = parse_fields("status.phase!=Failed,metadata.name==p", supported)
    assert selector.matches({"status.phase": "Running", "metadata.name": "p"})
    assert not selector.matches({"status.phase": "Failed", "metadata.name": "p"})
    assert selector.pinned("metadata.name") == "p"
    assert parse_fields("metadata.name=a\\,b", supported).matches({"metadata.name": "a,b"})


def test_unsupported_fields_are_refused_as_upstream() -> None:
    with pytest.raises(BadRequest) as e:
        parse_fields("spec.whatever=x", frozenset({"metadata.name"}))
    assert "field label not supported: spec.whatever" in str(e.value)
    with pytest.raises(BadRequest):
        parse_fields("metadata.name", frozenset({"metadata.name"}))
