"""Which API resources a cluster serves, from discovery, remembered on disk.

A command that needs to know (``ant submit``: does the cluster serve PodGroups?) asks
``Discovery.serves``. The answer for a group version is kept in a small JSON file per
user (``~/.cache/ant/discovery.json``, keyed by server URL) for ``ttl`` seconds, so the
hot path costs no request; after that, or when ``forget`` is called because the cluster
answered otherwise, one GET of ``/apis/<group>/<version>`` refreshes it. A cache that
cannot be read or written is no cache: the answer is then asked for every time.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ant.errors import NotFound
from ant.kube import codec
from ant.kube.client import Client, Resource, api_path

DEFAULT_TTL = 600.0  # seconds: a cluster upgrade is noticed within ten minutes


class Discovery:
    def __init__(
        self,
        client: Client,
        cache_file: Path | None,
        *,
        ttl: float = DEFAULT_TTL,
        now: Any = time.time,
    ) -> None:
        self.client = client
        self.cache_file = cache_file
        self.ttl = ttl
        self._now = now

    @property
    def _server(self) -> str:
        return str(self.client.transport.server)

    def serves(self, resource: Resource[Any]) -> bool:
        """Whether the server serves ``resource`` (its plural in its group version)."""
        return resource.plural in self._resources(resource.api_version)

    def forget(self, resource: Resource[Any]) -> None:
        """Drop what is remembered about ``resource``'s group version."""
        entries = self._read()
        if entries.get(self._server, {}).pop(resource.api_version, None) is not None:
            self._write(entries)

    def _resources(self, group_version: str) -> frozenset[str]:
        entries = self._read()
        known = entries.get(self._server, {}).get(group_version)
        if isinstance(known, dict) and self._now() - float(known.get("at", 0)) < self.ttl:
            return frozenset(known.get("resources") or ())
        resources = self._fetch(group_version)
        entries.setdefault(self._server, {})[group_version] = {
            "resources": sorted(resources),
            "at": self._now(),
        }
        self._write(entries)
        return resources

    def _fetch(self, group_version: str) -> frozenset[str]:
        prefix = ("apis", *group_version.split("/")) if "/" in group_version else ("api", "v1")
        try:
            body = self.client.transport.request("GET", api_path(*prefix), accept=codec.JSON).json()
        except NotFound:
            return frozenset()  # the group version is not served at all
        except ValueError:
            return frozenset()
        return frozenset(
            str(r.get("name", ""))
            for r in (body.get("resources") or [])
            if isinstance(r, dict) and "/" not in str(r.get("name", ""))
        )

    def _read(self) -> dict[str, Any]:
        if self.cache_file is None:
            return {}
        try:
            data = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.cache_file.parent, prefix=".discovery-")
            with os.fdopen(fd, "w") as f:
                json.dump(entries, f)
            os.replace(tmp, self.cache_file)
        except OSError:
            pass  # no cache: asked again next time
