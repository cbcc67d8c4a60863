"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection.

One controller leads; the others stand by. The leader renews the Lease every
``retry_period``; a candidate takes it over when it has not seen the Lease change for
``lease_duration`` (measured on its own clock from when it last saw a change, never by
comparing the holder's ``renewTime`` with its own clock: clocks differ). Every write
carries the Lease's resourceVersion, so two candidates can never both win. A leader that
cannot renew for ``renew_deadline`` steps down before anyone else may take over
(``renew_deadline`` < ``lease_duration``); one that stops cleanly releases the Lease so the
next takes over at once (client-go's ReleaseOnCancel).

The Lease also tells ``ant show`` and ``ant wait`` whether any controller runs
(``controller_running``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ant.errors import AlreadyExists, AntError, ApiError, Conflict, NotFound
from ant.kube import resources as r
from ant.kube.client import Client

log = logging.getLogger("ant.controller.lease")

LEASE_NAME = "ant-controller"
LEASE_NAMESPACE = "ant-system"


@dataclass(frozen=True)
class Timing:
    """controller-runtime's defaults."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def micro_time(t: float) -> str:
    """A ``meta.v1.MicroTime`` in JSON."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Run ``on_started`` when this candidate leads, ``on_stopped`` when it stops leading."""

    def __init__(
        self,
        client: Client,
        identity: str,
        *,
        namespace: str = LEASE_NAMESPACE,
        name: str = LEASE_NAME,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.timing = timing or Timing()
        self.clock = clock
        self.wall = wall
        self.leading = threading.Event()
        # What we last saw of the Lease, and when (our clock): expiry is judged from this.
        self._seen: tuple[str, str, str] | None = None  # holder, renewTime, resourceVersion
        self._seen_at = 0.0
        self._renewed_at = 0.0

    # ---- one round ------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease afterwards."""
        now = self.wall()
        try:
            lease = self.client.get(r.LEASES, self.name, self.namespace)
        except NotFound:
            return self._create(now)
        spec = lease.spec
        seen = (spec.holderIdentity, str(spec.renewTime.seconds), lease.metadata.resourceVersion)
        if seen != self._seen:
            self._seen, self._seen_at = seen, self.clock()
        holder = spec.holderIdentity
        duration = spec.leaseDurationSeconds or self.timing.lease_duration
        if holder and holder != self.identity and self.clock() - self._seen_at < duration:
            return False  # someone else holds it and has renewed recently
        patch: dict[str, Any] = {
            "metadata": {"resourceVersion": lease.metadata.resourceVersion},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.timing.lease_duration),
                "renewTime": micro_time(now),
            },
        }
        if holder != self.identity:
            patch["spec"]["acquireTime"] = micro_time(now)
            patch["spec"]["leaseTransitions"] = spec.leaseTransitions + 1
        try:
            self.client.patch(r.LEASES, self.name, patch, self.namespace, field_manager="ant")
        except Conflict:
            return False  # someone else wrote it first
        if holder != self.identity:
            log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)
        return True

    def _create(self, now: float) -> bool:
        lease = r.new(r.LEASES)
        lease.metadata.name, lease.metadata.namespace = self.name, self.namespace
        spec = lease.spec
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = int(self.timing.lease_duration)
        for stamp in (spec.acquireTime, spec.renewTime):
            stamp.seconds, stamp.nanos = int(now), int(now % 1 * 1e9)
        try:
            self.client.create(r.LEASES, lease, self.namespace)
        except AlreadyExists:
            return False
        log.info("%s created lease %s/%s", self.identity, self.namespace, self.name)
        return True

    def release(self) -> None:
        """Give the Lease up (only if still ours) so a stand-by takes over at once."""
        try:
            lease = self.client.get(r.LEASES, self.name, self.namespace)
            if lease.spec.holderIdentity != self.identity:
                return
            self.client.patch(
                r.LEASES,
                self.name,
                {
                    "metadata": {"resourceVersion": lease.metadata.resourceVersion},
                    "spec": {"holderIdentity": None, "leaseDurationSeconds": 1},
                },
                self.namespace,
            )
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except AntError as e:
            log.warning("could not release the lease: %s", e)

    # ---- the loop -------------------------------------------------------------------
    def run(
        self, stop: threading.Event, on_started: Callable[[], None], on_stopped: Callable[[], None]
    ) -> None:
        """Until ``stop``: acquire, lead (renewing), step down when renewal fails, repeat."""
        t = self.timing
        while not stop.is_set():
            try:
                held = self.try_acquire_or_renew()
            except AntError as e:
                log.warning("lease %s/%s: %s", self.namespace, self.name, e)
                held = False
            now = self.clock()
            if held:
                self._renewed_at = now
                if not self.leading.is_set():
                    self.leading.set()
                    on_started()
            elif self.leading.is_set() and now - self._renewed_at >= t.renew_deadline:
                log.error(
                    "%s could not renew the lease for %.0fs; stepping down",
                    self.identity,
                    t.renew_deadline,
                )
                self.leading.clear()
                on_stopped()
            stop.wait(t.retry_period)
        if self.leading.is_set():
            self.leading.clear()
            on_stopped()
            self.release()


@dataclass(frozen=True)
class ControllerState:
    """What the Lease says about the controller, for ``ant show`` and ``ant wait``."""

    running: bool | None  # None: cannot tell (no permission to read the Lease)
    holder: str = ""


def controller_state(
    client: Client,
    namespace: str = LEASE_NAMESPACE,
    name: str = LEASE_NAME,
    wall: Callable[[], float] = time.time,
) -> ControllerState:
    """Whether a controller holds the Lease and renewed it within its duration.

    Judged by the holder's ``renewTime`` against this machine's clock: good enough to
    tell "a controller runs" from "none has for a long time", which is all it is used for.
    """
    try:
        lease = client.get(r.LEASES, name, namespace)
    except NotFound:
        return ControllerState(False)
    except ApiError:
        return ControllerState(None)
    spec = lease.spec
    renewed = spec.renewTime.seconds + spec.renewTime.nanos / 1e9
    fresh = wall() - renewed <= (spec.leaseDurationSeconds or Timing.lease_duration) + 5
    return ControllerState(bool(spec.holderIdentity) and fresh, spec.holderIdentity)
