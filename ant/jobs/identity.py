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
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from ant.kube import resources
from ant.kube.client import Client

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


def whoami(client: Client) -> Identity:
    review = resources.new(resources.SELF_SUBJECT_REVIEWS)
    result = client.create(resources.SELF_SUBJECT_REVIEWS, review)
    info = result.status.userInfo
    return Identity(username=info.username, uid=info.uid, groups=tuple(info.groups))
