"""Delegated authentication and authorization of a request: the cache's and the controller's.

A bearer token is reviewed by the API server (TokenReview) and the caller's access by a
SubjectAccessReview, both cached (``ant.cache.auth``). Failures are raised as the
``ApiError`` the caller gets (401, 403, or 503 when a review could not be made).
"""

from __future__ import annotations

from ant.cache.auth import Attributes, Authenticator, Authorizer, ReviewError, UserInfo
from ant.cache.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ant.cache.metrics import Registry
from ant.cache.server.wire import Reply, Request, failure


def authenticate(authn: Authenticator, request: Request) -> UserInfo:
    """The caller of a request, by its bearer token."""
    scheme, _, token = request.header("authorization").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise failure(401, "Unauthorized", "Unauthorized: ant needs a bearer token")
    try:
        user = authn.authenticate(token)
    except ReviewError as e:
        raise failure(503, "ServiceUnavailable", str(e), retry_after=1) from e
    if user is None:
        raise failure(401, "Unauthorized", "Unauthorized")
    return user


def authorize(authz: Authorizer, user: UserInfo, attrs: Attributes) -> bool:
    try:
        return authz.authorize(user, attrs).allowed
    except ReviewError as e:
        raise failure(503, "ServiceUnavailable", str(e), retry_after=1) from e


def require(authz: Authorizer, user: UserInfo, attrs: Attributes) -> None:
    if not authorize(authz, user, attrs):
        raise failure(
            403,
            "Forbidden",
            f'{attrs.resource or attrs.path} is forbidden: User "{user.username}" cannot '
            f"{attrs.describe()}",
        )


def metrics_reply(authz: Authorizer, user: UserInfo, registry: Registry) -> Reply:
    """``GET /metrics``: for callers allowed ``get`` on the non-resource URL /metrics."""
    require(authz, user, Attributes(verb="get", path="/metrics"))
    return Reply(200, METRICS_CONTENT_TYPE, registry.render().encode())
