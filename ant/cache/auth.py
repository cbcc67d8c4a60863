"""Delegated authentication and authorization: the API server decides, the cache remembers.

The caller's bearer token is checked with a TokenReview, and each request's verb,
resource and namespace with a SubjectAccessReview for that user, exactly the decisions
the API server itself would make. Like k8s.io/apiserver's delegating authenticator and
authorizer:

- answers are kept for a short time (10 s by default, for allowed and denied, valid and
  invalid tokens alike), so a revoked token or RoleBinding stops working within that;
- tokens are never stored: the cache key is an HMAC-SHA256 of the token with a key
  made at start-up, and tokens never reach a log or an error message;
- concurrent look-ups of the same key are merged into one review (singleflight);
- a review that fails (the API server unreachable, an error answer) is not cached:
  the request fails with ``ReviewError`` and the next one asks again.

The cache's own credentials need ``create`` on tokenreviews and subjectaccessreviews:
the built-in ClusterRole ``system:auth-delegator``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ant.cache.metrics import Counter, Histogram
from ant.errors import AntError, ExitCode
from ant.kube import resources as r
from ant.kube.client import Client

log = logging.getLogger("ant.cache.auth")

V = TypeVar("V")
DEFAULT_TTL = 10.0
MAX_ENTRIES = 100_000


class ReviewError(AntError):
    """A review could not be made; the caller cannot be judged right now (503)."""

    exit_code = ExitCode.UNAVAILABLE


@dataclass(frozen=True)
class UserInfo:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What a request does, as a SubjectAccessReview states it."""

    verb: str
    resource: str = ""
    group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    path: str = ""  # a non-resource URL (e.g. /metrics) when resource is empty

    def describe(self) -> str:
        if not self.resource:
            return f"{self.verb} {self.path}"
        what = f"{self.resource}.{self.group}" if self.group else self.resource
        where = (
            f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        )
        return f'{self.verb} resource "{what}"{where}'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class TTLCache(Generic[V]):
    """A dict whose entries expire; bounded, dropping expired (then oldest) entries."""

    def __init__(self, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic):
        self._data: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self._clock = clock

    def lookup(self, key: Hashable) -> tuple[bool, V | None]:
        """(found, value): a cached value may itself be None (a token that is not valid)."""
        item = self._data.get(key)
        if item is None:
            return False, None
        if item[0] <= self._clock():
            with self._lock:
                self._data.pop(key, None)
            return False, None
        return True, item[1]

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._data) >= self._max:
                for k in [k for k, (exp, _) in self._data.items() if exp <= now]:
                    del self._data[k]
                while len(self._data) >= self._max:
                    del self._data[next(iter(self._data))]
            self._data[key] = (now + ttl, value)

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class _Call(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: str | None = None
    waiters: int = 0  # callers sharing this call, besides the one making it


class SingleFlight(Generic[V]):
    """Concurrent calls for one key share the first caller's result (or failure)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call[V]] = {}

    def waiting(self, key: Hashable) -> int:
        """How many callers wait on the call in flight for ``key`` (0: none in flight)."""
        call = self._calls.get(key)
        return call.waiters if call is not None else 0

    def do(self, key: Hashable, fn: Callable[[], V]) -> tuple[V, bool]:
        """``fn()``'s result and whether it was shared from a call already in flight."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            else:
                call.waiters += 1
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise ReviewError(call.error)
            return call.value, True  # type: ignore[return-value]
        try:
            call.value = fn()
            return call.value, False
        except AntError as e:
            call.error = str(e)
            raise
        except Exception as e:
            call.error = f"unexpected {type(e).__name__}"
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()


@dataclass(frozen=True)
class AuthMetrics:
    cache: Counter  # review (token|access), result (hit|miss|shared)
    reviews: Histogram  # review
    errors: Counter  # review


class Authenticator:
    """Bearer token -> UserInfo (None when the API server says the token is not valid)."""

    def __init__(
        self,
        client: Client,
        *,
        ttl: float = DEFAULT_TTL,
        audiences: tuple[str, ...] = (),
        metrics: AuthMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.audiences = audiences
        self.metrics = metrics
        self._key = os.urandom(32)
        self._cache: TTLCache[UserInfo | None] = TTLCache(clock=clock)
        self._flight: SingleFlight[UserInfo | None] = SingleFlight()

    def cache_key(self, token: str) -> bytes:
        material = "\x00".join((token, *self.audiences)).encode()
        return hmac.new(self._key, material, hashlib.sha256).digest()

    def authenticate(self, token: str) -> UserInfo | None:
        key = self.cache_key(token)
        found, user = self._cache.lookup(key)
        if found:
            self._count("hit")
            return user
        value, shared = self._flight.do(key, lambda: self._review_and_keep(key, token))
        self._count("shared" if shared else "miss")
        return value

    def _count(self, result: str) -> None:
        if self.metrics:
            self.metrics.cache.inc("token", result)

    def _review_and_keep(self, key: bytes, token: str) -> UserInfo | None:
        user = self._review(token)
        self._cache.put(key, user, self.ttl)
        return user

    def _review(self, token: str) -> UserInfo | None:
        from ant.kube.proto import authentication_v1_pb2 as authn

        review = authn.TokenReview(spec=authn.TokenReviewSpec(token=token))
        review.spec.audiences.extend(self.audiences)
        started = time.monotonic()
        try:
            result: Any = self.client.create(r.TOKEN_REVIEWS, review)
        except AntError as e:
            if self.metrics:
                self.metrics.errors.inc("token")
            log.warning("TokenReview failed: %s", e)
            raise ReviewError(f"cannot check the token with the API server: {e}") from e
        finally:
            if self.metrics:
                self.metrics.reviews.observe(time.monotonic() - started, "token")
        status = result.status
        if not status.authenticated:
            return None
        user = status.user
        return UserInfo(
            username=user.username,
            uid=user.uid,
            groups=tuple(user.groups),
            extra=tuple(sorted((k, tuple(v.items)) for k, v in user.extra.items())),
        )


class Authorizer:
    """(UserInfo, Attributes) -> Decision, by SubjectAccessReview."""

    def __init__(
        self,
        client: Client,
        *,
        allowed_ttl: float = DEFAULT_TTL,
        denied_ttl: float = DEFAULT_TTL,
        metrics: AuthMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.allowed_ttl = allowed_ttl
        self.denied_ttl = denied_ttl
        self.metrics = metrics
        self._cache: TTLCache[Decision] = TTLCache(clock=clock)
        self._flight: SingleFlight[Decision] = SingleFlight()

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        key = (user, attrs)
        found, cached = self._cache.lookup(key)
        if found and cached is not None:
            if self.metrics:
                self.metrics.cache.inc("access", "hit")
            return cached
        decision, shared = self._flight.do(key, lambda: self._review_and_keep(key, user, attrs))
        if self.metrics:
            self.metrics.cache.inc("access", "shared" if shared else "miss")
        return decision

    def _review_and_keep(
        self, key: tuple[UserInfo, Attributes], user: UserInfo, attrs: Attributes
    ) -> Decision:
        decision = self._review(user, attrs)
        self._cache.put(key, decision, self.allowed_ttl if decision.allowed else self.denied_ttl)
        return decision

    def _review(self, user: UserInfo, attrs: Attributes) -> Decision:
        from ant.kube.proto import authorization_v1_pb2 as authz

        spec = authz.SubjectAccessReviewSpec(user=user.username, uid=user.uid)
        spec.groups.extend(user.groups)
        for k, values in user.extra:
            spec.extra[k].items.extend(values)
        if attrs.resource:
            spec.resourceAttributes.CopyFrom(
                authz.ResourceAttributes(
                    namespace=attrs.namespace,
                    verb=attrs.verb,
                    group=attrs.group,
                    version="*",
                    resource=attrs.resource,
                    subresource=attrs.subresource,
                    name=attrs.name,
                )
            )
        else:
            spec.nonResourceAttributes.CopyFrom(
                authz.NonResourceAttributes(path=attrs.path, verb=attrs.verb)
            )
        started = time.monotonic()
        try:
            result: Any = self.client.create(
                r.SUBJECT_ACCESS_REVIEWS, authz.SubjectAccessReview(spec=spec)
            )
        except AntError as e:
            if self.metrics:
                self.metrics.errors.inc("access")
            log.warning("SubjectAccessReview failed: %s", e)
            raise ReviewError(f"cannot check access with the API server: {e}") from e
        finally:
            if self.metrics:
                self.metrics.reviews.observe(time.monotonic() - started, "access")
        status = result.status
        if status.evaluationError and not status.allowed and not status.denied:
            # RBAC answered "no opinion" with an error: treat as denied, but say why.
            log.info("SubjectAccessReview evaluation error: %s", status.evaluationError)
        return Decision(allowed=bool(status.allowed) and not status.denied, reason=status.reason)
