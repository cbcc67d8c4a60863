"""Reading "every namespace" as whoever asks may: ``-A`` for researchers.

A cluster-wide list needs the right to list in every namespace; a researcher has it in a
few. So a read across namespaces tries the cluster-wide request first, and when the API
server refuses it (403), reads each namespace the user may be working in, concurrently:

- which ones: every namespace, if the user may list namespaces (``candidates``), else
  the ones the caller names (kubeconfig's contexts, the config file);
- whether the user may read each: the API server's own answer to the read itself (one
  request per namespace either way; an access review first would double them), and a
  refused namespace is *skipped* and reported, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ant.errors import Forbidden
from ant.kube import resources as r
from ant.kube.client import Client

T = TypeVar("T")
CONCURRENCY = 8


@dataclass(frozen=True)
class Across(Generic[T]):
    """What a read across namespaces found: one result per scope read."""

    results: dict[str | None, T]  # None: the one cluster-wide read
    skipped: tuple[str, ...] = field(default=())  # namespaces the user may not read

    @property
    def everywhere(self) -> bool:
        return None in self.results


def candidates(client: Client, named: Iterable[str]) -> list[str]:
    """Every namespace, if the user may list them; else the ``named`` ones."""
    try:
        listed = client.list(r.NAMESPACES)  # small objects: a name, labels, a phase
    except Forbidden:
        return sorted(dict.fromkeys(named))
    return sorted(item.metadata.name for item in listed.items)


def across(
    client: Client, read: Callable[[str | None], T], named: Callable[[], Sequence[str]]
) -> Across[T]:
    """``read(None)`` (cluster-wide); when forbidden, ``read(ns)`` for each candidate
    namespace, concurrently, skipping those where it is forbidden too."""
    try:
        return Across({None: read(None)})
    except Forbidden:
        pass
    namespaces = candidates(client, named())

    def one(ns: str) -> tuple[str, T | None]:
        try:
            return ns, read(ns)
        except Forbidden:
            return ns, None

    with ThreadPoolExecutor(max_workers=max(1, min(CONCURRENCY, len(namespaces)))) as pool:
        found = list(pool.map(one, namespaces))
    results: dict[str | None, T] = {ns: value for ns, value in found if value is not None}
    skipped = tuple(ns for ns, value in found if value is None)
    return Across(results, skipped)
