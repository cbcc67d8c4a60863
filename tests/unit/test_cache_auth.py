"""ant.cache.auth against a scripted API server: caching, singleflight, no error caching.

The real TokenReview/SubjectAccessReview round trips are in tests/integration/test_cache.py;
here the server is scripted to count reviews and to fail on demand.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ant.cache.auth import (
    Attributes,
    Authenticator,
    Authorizer,
    ReviewError,
    SingleFlight,
    TTLCache,
    UserInfo,
)
from ant.kube import codec
from ant.kube.auth import NoAuth
from ant.kube.client import Client
from ant.kube.transport import RetryPolicy, Transport
from tests.helpers import wait_for
from tests.unit.scripted_server import ScriptedServer, respond, scripted_server


def client_for(server: ScriptedServer) -> Client:
    return Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))


def token_review(
    authenticated: bool, username: str = "alice", hold: Callable[[], object] = lambda: None
) -> Any:
    """A TokenReview answer, sent once ``hold()`` returns."""
    from ant.kube.proto import authentication_v1_pb2 as authn

    review = authn.TokenReview()
    review.status.authenticated = authenticated
    if authenticated:
        review.status.user.username = username
        review.status.user.groups.extend(["ant:researchers", "system:authenticated"])
    body = codec.encode(review, "authentication.k8s.io/v1", "TokenReview")
    reply = respond(201, body, codec.PROTOBUF)

    def held(h: http.server.BaseHTTPRequestHandler) -> None:
        hold()
        reply(h)

    return held


def access_review(allowed: bool) -> Any:
    from ant.kube.proto import authorization_v1_pb2 as authz

    review = authz.SubjectAccessReview()
    review.status.allowed = allowed
    review.status.reason = "RBAC: allowed" if allowed else ""
    body = codec.encode(review, "authorization.k8s.io/v1", "SubjectAccessReview")
    return respond(201, body, codec.PROTOBUF)


def server_error() -> Any:
    return respond(500, b'{"kind":"Status","code":500,"message":"etcd is sad"}')


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_reviews_are_cached_for_their_ttl() -> None:
    clock = Clock()
    with scripted_server() as server:
        server.replies += [token_review(True), token_review(True, "alice-again")]
        authn = Authenticator(client_for(server), ttl=10, clock=clock)
        assert authn.authenticate("t0ken") == UserInfo(
            "alice", groups=("ant:researchers", "system:authenticated")
        )
        clock.now += 9
        assert authn.authenticate("t0ken").username == "alice"  # type: ignore[union-attr]
        assert len(server.seen) == 1
        clock.now += 2
        assert authn.authenticate("t0ken").username == "alice-again"  # type: ignore[union-attr]
        assert len(server.seen) == 2
    request = codec.decode(server.seen[0].body)
    assert request.spec.token == "t0ken"  # type: ignore[attr-defined]


def test_invalid_tokens_are_cached_too_but_errors_are_not() -> None:
    with scripted_server() as server:
        server.replies += [server_error(), token_review(False), token_review(True)]
        authn = Authenticator(client_for(server), ttl=10)
        with pytest.raises(ReviewError) as e:
            authn.authenticate("bad")
        assert "t0ken" not in str(e.value)
        assert authn.authenticate("bad") is None  # the error was not cached: asked again
        assert authn.authenticate("bad") is None  # "not valid" is cached
        assert len(server.seen) == 2


def test_concurrent_lookups_of_one_token_make_one_review() -> None:
    with scripted_server() as server:
        authn = Authenticator(client_for(server), ttl=10)
        key = authn.cache_key("same")

        def joined() -> None:
            wait_for(
                "the other 7 look-ups to join the review in flight",
                lambda: authn._flight.waiting(key) == 7,
                10,
            )

        server.replies += [token_review(True, hold=joined), token_review(True, "other")]
        results: list[Any] = []
        threads = [
            threading.Thread(target=lambda: results.append(authn.authenticate("same")))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert [u.username for u in results] == ["alice"] * 8
        assert len(server.seen) == 1


def test_the_cache_key_is_a_keyed_hash_not_the_token() -> None:
    with scripted_server() as server:
        server.replies.append(token_review(True))
        authn = Authenticator(client_for(server))
        authn.authenticate("secret-token")
        keys = list(authn._cache._data)
    assert keys == [authn.cache_key("secret-token")]
    assert b"secret-token" not in keys[0]
    assert Authenticator(client_for(server)).cache_key("secret-token") != keys[0]


def test_access_reviews_are_cached_per_user_and_attributes() -> None:
    alice, bob = UserInfo("alice", groups=("g",)), UserInfo("bob")
    pods = Attributes(verb="list", resource="pods", namespace="research")
    with scripted_server() as server:
        server.replies += [access_review(True), access_review(False), access_review(False)]
        authz = Authorizer(client_for(server))
        assert authz.authorize(alice, pods).allowed
        assert authz.authorize(alice, pods).allowed
        assert not authz.authorize(bob, pods).allowed
        assert not authz.authorize(bob, pods).allowed  # denials are cached too
        other_ns = Attributes(verb="list", resource="pods", namespace="bob-private")
        assert not authz.authorize(alice, other_ns).allowed
        assert len(server.seen) == 3
    first: Any = codec.decode(server.seen[0].body)
    spec = first.spec
    assert (spec.user, list(spec.groups)) == ("alice", ["g"])
    attrs = spec.resourceAttributes
    assert (attrs.verb, attrs.resource, attrs.namespace) == ("list", "pods", "research")


def test_access_review_errors_are_not_cached() -> None:
    with scripted_server() as server:
        server.replies += [server_error(), access_review(True)]
        authz = Authorizer(client_for(server))
        attrs = Attributes(verb="get", path="/metrics")
        with pytest.raises(ReviewError):
            authz.authorize(UserInfo("admin"), attrs)
        assert authz.authorize(UserInfo("admin"), attrs).allowed
    second: Any = codec.decode(server.seen[1].body)
    assert second.spec.nonResourceAttributes.path == "/metrics"


def test_singleflight_shares_failures_with_waiters() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = threading.Event()
    errors: list[str] = []

    def slow_failure() -> int:
        started.set()
        wait_for("the second caller to join the call in flight", lambda: flight.waiting("k"), 5)
        raise ReviewError("boom")

    def waiter() -> None:
        started.wait()
        try:
            flight.do("k", lambda: 1)
        except ReviewError as e:
            errors.append(str(e))

    t = threading.Thread(target=waiter)
    t.start()
    with pytest.raises(ReviewError):
        flight.do("k", slow_failure)
    t.join(5)
    assert errors == ["boom"]
    assert flight.do("k", lambda: 2) == (2, False)  # nothing left in flight


def test_ttl_cache_is_bounded() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=3)
    for i in range(5):
        cache.put(i, i, ttl=60)
    assert len(cache) == 3
    assert cache.lookup(4) == (True, 4)
    assert cache.lookup(0) == (False, None)
