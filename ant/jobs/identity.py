"""Who the user is, according to the API server, and how that becomes a label value.

The user is never ``$USER``: it is what ``SelfSubjectReview`` says, so that
``created-by`` cannot be forged by a shell variable and matches RBAC.

Label values are at most 63 characters of ``[A-Za-z0-9_.-]``, starting and
ending alphanumeric. The mapping rule (docs/metadata.md):

- a username that is already a valid label value and has no ``_`` is used as is;
- any other is mapped to a readable prefix (invalid characters become ``-``,
  at most 52 characters) + ``_`` + the first 10 hex digits of its SHA-256.

Every mapped value contains ``_`` and no unmapped one does, so the two sets
never collide; two mapped values collide only if their hashes do (2^-40).
The exact username is kept in the ``ant.dev/created-by-full`` annotation.

Asking costs a request, so reads remember the answer per server and credential for
``IDENTITY_TTL`` seconds (``IdentityCache``: a file named by a hash of the credential,
never the credential itself); the CLI forgets it on any 401 or 403.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ant.kube import resources
from ant.kube.client import Client
from ant.kube.config import write_private

IDENTITY_TTL = 300.0  # seconds a remembered identity is used
LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class Identity:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return user_label(self.username)


def user_label(username: str) -> str:
    """The ``ant.dev/created-by`` label value for a username (see module docstring)."""
    if username and "_" not in username and LABEL_VALUE.fullmatch(username):
        return username
    readable = _INVALID_RUN.sub("-", username)[:52].strip("-.") or "user"
    digest = hashlib.sha256(username.encode()).hexdigest()[:10]
    return f"{readable}_{digest}"


def whoami(client: Client, cache: IdentityCache | None = None) -> Identity:
    """Who the API server says the client's user is (a ``SelfSubjectReview``).

    With ``cache``: a remembered answer while it is fresh, else ask and remember.
    """
    if cache is not None:
        remembered = cache.load()
        if remembered is not None:
            return remembered
    review = resources.new(resources.SELF_SUBJECT_REVIEWS)
    result = client.create(resources.SELF_SUBJECT_REVIEWS, review)
    info = result.status.userInfo
    identity = Identity(username=info.username, uid=info.uid, groups=tuple(info.groups))
    if cache is not None:
        cache.store(identity)
    return identity


@dataclass(frozen=True)
class IdentityCache:
    """One credential's identity on disk (a JSON file, mode 0600), fresh for ``ttl`` s.

    Unreadable, corrupt or stale files are simply not used; failing to write is not an
    error (the next command asks again).
    """

    path: Path
    ttl: float = IDENTITY_TTL

    def load(self, now: float | None = None) -> Identity | None:
        now = time.time() if now is None else now
        try:
            entry = json.loads(self.path.read_text())
            at, username = float(entry["at"]), entry["username"]
            if not (0 <= now - at < self.ttl) or not isinstance(username, str):
                return None
            return Identity(username, str(entry["uid"]), tuple(map(str, entry["groups"])))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, identity: Identity, now: float | None = None) -> None:
        entry = {
            "at": time.time() if now is None else now,
            "username": identity.username,
            "uid": identity.uid,
            "groups": list(identity.groups),
        }
        try:
            write_private(self.path, json.dumps(entry))
        except OSError:
            return

    def forget(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            return
