"""What the long-running commands (``ant cache serve``, ``ant controller run``) share: log
lines on stderr, two API clients, and running until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ant.cli.context import App
    from ant.kube.client import Client


def server_logger(app: App) -> logging.Logger:
    """ant's log lines on stderr with their time; DEBUG with -vv."""
    handler = logging.StreamHandler(app.env.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ant")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if app.options.verbose > 1 else logging.INFO)
    return logger


def server_clients(app: App) -> tuple[Client, Client]:
    """(watches, reviews): watches hold their connection for minutes; writes and reviews
    must answer within seconds."""
    from ant.kube.client import Client
    from ant.kube.transport import Transport

    kubeconfig = app.kubeconfig
    return (
        Client(Transport.from_kubeconfig(kubeconfig, timeout=60)),
        Client(Transport.from_kubeconfig(kubeconfig, timeout=10)),
    )


@contextmanager
def until_signalled(*clients: Client) -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT; on the way out the handlers are restored and the
    clients' connections closed."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for client in clients:
            client.transport.close()
