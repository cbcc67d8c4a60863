"""What a failed exchange with an API server means, decided once for both HTTP engines
(``requests`` and ``ant.kube.stdhttp``): an error response becomes the ``ApiError`` of its
``meta.v1.Status``; a ``requests`` failure a ``WireError``; a ``WireError`` the
``TransportError`` the user sees. ``ant.kube.transport`` decides what to retry.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ant.errors import (
    AntError,
    ApiError,
    ConnectError,
    RequestTimeout,
    Status,
    TransportError,
    api_error,
)
from ant.kube import codec
from ant.kube.stdhttp import Reply, WireError, reason

if TYPE_CHECKING:
    import requests


def api_error_of(resp: requests.Response | Reply) -> ApiError:
    """The Status in an error response (protobuf or JSON), or one made from the code."""
    retry_after = _retry_after(resp.headers.get("Retry-After"))
    content_type = resp.headers.get("Content-Type", "")
    status: Status | None = None
    try:
        if content_type.startswith(codec.PROTOBUF):
            status = codec.status_from_message(codec.decode(resp.content))
        elif content_type.startswith(codec.JSON):
            body = resp.json()
            if isinstance(body, dict) and body.get("kind") == "Status":
                status = codec.status_from_json(body)
    except (AntError, ValueError, AttributeError):  # an error body that is not a Status
        status = None
    if status is None:
        text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason
        status = Status(code=resp.status_code, reason=resp.reason or "", message=text)
    if status.code != resp.status_code:
        status = dataclasses.replace(status, code=resp.status_code)
    if retry_after and not status.retry_after_seconds:
        status = dataclasses.replace(status, retry_after_seconds=retry_after)
    return api_error(status)


def _retry_after(value: str | None) -> int:
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0


def host_of(url: str) -> str:
    return url.split("/", 3)[2] if "://" in url else url


def wire_error(e: Exception) -> WireError:
    """What a requests exception means, in the terms of both engines."""
    import requests

    if isinstance(e, requests.exceptions.SSLError):
        return WireError("tls", reason(e), sent=False)
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return WireError("timeout", "connect timed out", sent=False)
    if isinstance(e, requests.exceptions.Timeout):
        return WireError("timeout", "read timed out", sent=True)
    if isinstance(e, requests.exceptions.ConnectionError):
        never_sent = _never_sent(e)
        return WireError("connect" if never_sent else "broken", reason(e), sent=not never_sent)
    return WireError("failed", reason(e), sent=True)


def transport_error(e: WireError, url: str) -> TransportError:
    host = host_of(url)
    if e.kind == "tls":
        return TransportError(
            f"TLS handshake with {host} failed: {e.reason}",
            hint="check the cluster's certificate-authority in kubeconfig",
        )
    if e.kind == "timeout":
        return RequestTimeout(f"{host} did not answer in time")
    if e.kind in ("connect", "broken"):
        return ConnectError(f"cannot reach {host}: {e.reason}", hint="is the cluster up?")
    return TransportError(f"request to {host} failed: {e.reason}")


def _never_sent(e: Exception) -> bool:
    """True when the connection was never made, so not even a POST can have been processed."""
    from urllib3.exceptions import NewConnectionError

    reason_ = getattr(e.args[0], "reason", None) if e.args else None
    return isinstance(reason_, NewConnectionError)
