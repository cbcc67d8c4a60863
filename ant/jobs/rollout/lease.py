"""One ``ant rollout`` at a time per job: a lease in an annotation (docs/rollout.md).

``ant.dev/rollout-lease`` on the StatefulSet holds JSON: who holds it (local user, host,
process id, and a token for this one run) and when it expires.

- **Taken** in the rollout's first write, a PATCH carrying the resourceVersion the lease
  was judged free on: of two rollouts that both saw it free, one gets a 409, reads again
  and finds the other's lease (``RolloutHeld``, exit 5, naming the holder).
- **Free** when absent, expired, or held by a process of this host that has exited
  (``kill -9``, a crash): rerun on the same machine, a killed rollout resumes at once;
  one killed on another machine is resumed once its lease has expired.
- **Renewed** every third of its duration from a thread (read, check it is still ours,
  PATCH with the resourceVersion read), so a wait of any length keeps it.
- **Released** with the rollout's last write (finished or paused), or when it fails.

Expiry is compared with this machine's clock: clocks that disagree by more than the
renewal margin (a minute) could let a lease be taken early.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ant.errors import AntError, Conflict, JobChanged, RolloutHeld
from ant.jobs import schema
from ant.jobs.documents import rfc3339
from ant.kube import resources as r
from ant.kube.client import Client

LEASE_SECONDS = 90.0
ATTEMPTS = 5  # conflicts in a row (status writes move the resourceVersion) before giving up


@dataclass(frozen=True)
class Holder:
    """Who runs a rollout: enough for a person to find it, and for this host to tell
    whether it is still running."""

    user: str
    host: str
    pid: int
    token: str  # this run: two rollouts in one process are two holders

    @classmethod
    def here(cls) -> Holder:
        return cls(_login(), socket.gethostname(), os.getpid(), secrets.token_hex(4))

    def gone(self) -> bool:
        """The holder's process has exited; only knowable on its own host."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # it exists, as another user's process
        return False

    def __str__(self) -> str:
        return f"{self.user} on {self.host} (pid {self.pid})"


@dataclass(frozen=True)
class Lease:
    holder: Holder
    expires_at: datetime

    def encode(self) -> str:
        record = {**asdict(self.holder), "expiresAt": rfc3339(self.expires_at)}
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Lease | None:
        """None for a value that is not a lease (edited by hand): it holds nothing."""
        try:
            record = json.loads(text)
            holder = Holder(
                str(record["user"]), str(record["host"]), int(record["pid"]), str(record["token"])
            )
            expires = datetime.strptime(record["expiresAt"], "%Y-%m-%dT%H:%M:%SZ")
        except (ValueError, KeyError, TypeError):
            return None
        return cls(holder, expires.replace(tzinfo=UTC))

    def free(self, now: datetime) -> bool:
        return now >= self.expires_at or self.holder.gone()


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return f"uid {os.getuid()}"


def _held(sts: Any) -> Lease | None:
    text = sts.metadata.annotations.get(schema.ROLLOUT_LEASE)
    return Lease.decode(text) if text else None


class RolloutLease:
    """The lease of one rollout run on one job."""

    def __init__(self, client: Client, holder: Holder, seconds: float = LEASE_SECONDS) -> None:
        self.client = client
        self.holder = holder
        self.seconds = seconds
        self.name = self.namespace = ""
        self.lost_to: Lease | None = None  # set by the renewal when another run took over
        self.held = False
        self._stop = threading.Event()
        self._renewal: threading.Thread | None = None

    def _lease(self) -> str:
        expires = datetime.now(UTC) + timedelta(seconds=self.seconds)
        return Lease(self.holder, expires.replace(microsecond=0)).encode()

    def take(self, sts: Any, annotations: Callable[[Any], Mapping[str, str | None]]) -> Any:
        """Take the lease with the rollout's first write: ``annotations(sts)`` joins it in
        one PATCH, on the resourceVersion of the ``sts`` it was judged on. Returns the
        patched StatefulSet; raises ``RolloutHeld`` naming the holder while another run has it.
        """
        self.name, self.namespace = sts.metadata.name, sts.metadata.namespace
        for _ in range(ATTEMPTS):
            held = _held(sts)
            if held and held.holder.token != self.holder.token and not held.free(_now()):
                raise RolloutHeld(
                    f"job {self.name} is being rolled out by {held.holder} until "
                    f"{rfc3339(held.expires_at)}: one rollout at a time",
                    hint=f"wait for it, see 'ant rollout status {self.name}'; if it was "
                    "killed on another machine, run again once its lease has expired",
                )
            body = {
                "metadata": {
                    "resourceVersion": sts.metadata.resourceVersion,
                    "annotations": {**annotations(sts), schema.ROLLOUT_LEASE: self._lease()},
                }
            }
            try:
                patched = self.client.patch(r.STATEFULSETS, self.name, body, self.namespace)
            except Conflict:
                sts = self.client.get(r.STATEFULSETS, self.name, self.namespace)
                continue
            self.held = True
            self._renewal = threading.Thread(target=self._renew_until_stopped, daemon=True)
            self._renewal.start()
            return patched
        raise JobChanged(
            f"job {self.name} kept changing while ant took its rollout lease "
            f"({ATTEMPTS} attempts); try again"
        )

    def check(self) -> None:
        """Before deleting anything: raise ``RolloutHeld`` if another run took the lease."""
        if self.lost_to is not None:
            raise RolloutHeld(
                f"rollout of {self.name} stopped: its lease expired and "
                f"{self.lost_to.holder} took it over; nothing more was deleted"
            )

    def release_annotation(self) -> dict[str, str | None]:
        """For the rollout's last PATCH: removes the lease if it is still ours."""
        self._stop.set()
        if not self.held or self.lost_to is not None:
            return {}
        self.held = False
        return {schema.ROLLOUT_LEASE: None}

    def release(self) -> None:
        """When the rollout ends without its last PATCH (an error): remove the lease if it
        is still ours, best effort (it expires anyway)."""
        self._stop.set()
        if not self.held:
            return
        self.held = False
        with suppress(AntError):
            self._write(None)

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            with suppress(AntError):  # unreachable for now: the next renewal tries again
                self._write(self._lease())
            if self.lost_to is not None:
                return

    def _write(self, lease: str | None) -> None:
        """Renew (or remove) the lease if it is still ours: read, check, PATCH on that
        resourceVersion."""
        for _ in range(ATTEMPTS):
            sts = self.client.get(r.STATEFULSETS, self.name, self.namespace)
            held = _held(sts)
            if held is None or held.holder.token != self.holder.token:
                if held is not None:
                    self.lost_to = held
                return
            body = {
                "metadata": {
                    "resourceVersion": sts.metadata.resourceVersion,
                    "annotations": {schema.ROLLOUT_LEASE: lease},
                }
            }
            try:
                self.client.patch(r.STATEFULSETS, self.name, body, self.namespace)
            except Conflict:
                continue
            return


def _now() -> datetime:
    return datetime.now(UTC)
