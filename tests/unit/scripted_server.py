"""A real HTTP server on loopback that answers from a script.

For the faults a real API server cannot produce on demand (a 429, a 500, a
connection dropped mid-stream): each request takes the next scripted reply.
"""

from __future__ import annotations

import http.server
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

Reply = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedServer:
    url: str
    replies: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)


def respond(
    status: int, body: bytes = b"", content_type: str = "application/json", **headers: str
) -> Reply:
    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.end_headers()
        h.wfile.write(body)

    return reply


def stream(chunks: list[bytes], content_type: str, *, drop: bool = False, **headers: str) -> Reply:
    """A chunked response; with ``drop`` the connection is cut before the final chunk."""

    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.end_headers()
        for c in chunks:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            h.wfile.flush()
        if drop:
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.wfile.write(b"0\r\n\r\n")

    return reply


def stall(release: threading.Event, content_type: str = "application/json") -> Reply:
    """Headers promising a body that never comes (until ``release`` is set)."""

    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.flush()
        release.wait()

    return reply


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    server_state = ScriptedServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server_state.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            if not server_state.replies:
                respond(599, b"no scripted reply left")(self)
                return
            server_state.replies.pop(0)(self)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # dropped connections are what these tests script

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_kubeconfig(path: Path, server_url: str, namespace: str = "research") -> Path:
    """A kubeconfig whose one context (``c``, a token user) points at ``server_url``."""
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Config
            clusters: [{{name: c, cluster: {{server: "{server_url}"}}}}]
            users: [{{name: u, user: {{token: t}}}}]
            contexts: [{{name: c, context: {{cluster: c, user: u, namespace: {namespace}}}}}]
            current-context: c
            """
        )
    )
    return path
