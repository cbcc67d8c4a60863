"""ant.cli.garbage: the cyclic collector is paused inside the block, and left as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ant.cli.garbage import collector_paused


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


@pytest.mark.usefixtures("collector_enabled")
def test_paused_inside_and_running_again_after_even_on_error() -> None:
    inside: list[bool] = []

    def fail() -> None:
        with collector_paused():
            inside.append(gc.isenabled())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert inside == [False]
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_enabled")
def test_a_collector_paused_already_stays_paused() -> None:
    gc.disable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()
