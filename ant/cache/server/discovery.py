"""Just enough of the API server's discovery for ``kubectl --server`` to list."""

from __future__ import annotations

import json
from typing import Any

from ant import __version__
from ant.cache.server.wire import JSON, Reply
from ant.cache.store import Store

_SHORT_NAMES = {
    "pods": ["po"],
    "services": ["svc"],
    "nodes": ["no"],
    "events": ["ev"],
    "statefulsets": ["sts"],
}


def discovery(path: str, store: Store) -> Reply:
    """Just enough of the API server's discovery for ``kubectl --server`` to list."""
    kinds = [t.kind for t in store.tables.values()]
    doc: dict[str, Any]
    if path == "/version":
        doc = {
            "major": "",
            "minor": "",
            "gitVersion": f"ant-cache-{__version__}",
            "platform": "python",
        }
    elif path == "/api":
        doc = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    elif path == "/apis":
        apps = {"groupVersion": "apps/v1", "version": "v1"}
        groups = [{"name": "apps", "versions": [apps], "preferredVersion": apps}]
        doc = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    else:
        group = "apps" if path == "/apis/apps/v1" else ""
        doc = {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "apps/v1" if group else "v1",
            "resources": [
                {
                    "name": k.name,
                    "singularName": k.resource.kind.lower(),
                    "namespaced": k.namespaced,
                    "kind": k.resource.kind,
                    "verbs": ["get", "list"],
                    "shortNames": _SHORT_NAMES.get(k.name, []),
                }
                for k in kinds
                if k.resource.group == group
            ],
        }
    return Reply(200, JSON, json.dumps(doc).encode())
