"""Streams into a pod through the API server: a minimal WebSocket client (RFC 6455),
``pods/exec`` over kubectl's channel protocol (``v5.channel.k8s.io``) and
``pods/portforward`` over its WebSocket form (``v4.channel.k8s.io``).

The connection is Transport's: its server, TLS settings (CA, client certificate,
tls-server-name) and credentials (``auth.headers()``), over ``http.client`` and ``ssl``
(``ant.kube.stdhttp``); an answer other than ``101 Switching Protocols`` becomes the
``ApiError`` its Status says (403 -> ``Forbidden``, 404 -> ``NotFound``).

Channel protocol: every binary message starts with a channel byte: 0 stdin, 1 stdout,
2 stderr, 3 the error channel (a ``Status`` as JSON when the command ends: ``Success``,
or ``NonZeroExitCode`` with the code in ``details.causes``), 4 terminal resize; v5 adds
255, "close": ``[255, channel]`` ends a channel (stdin) without closing the connection.
Port-forward: one WebSocket per forwarded connection (``?ports=P``), channel 0 the data,
channel 1 errors; each channel's first message is the port (two bytes, little-endian).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlencode, urlsplit

from ant.errors import AntError, DecodeError, TransportError
from ant.kube.failures import api_error_of
from ant.kube.transport import USER_AGENT, Transport

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE_CHANNEL = 0, 1, 2, 3, 4, 255


class WebSocket:
    """One open WebSocket: whole messages in and out (fragments joined, pings answered)."""

    def __init__(self, conn: http.client.HTTPConnection, reader: BinaryIO, protocol: str):
        self._conn = conn
        self._reader = reader
        self._sending = threading.Lock()  # one frame at a time (data and pongs, two threads)
        self.protocol = protocol

    def send(self, payload: bytes, opcode: int = BINARY) -> None:
        """One frame, masked as a client's must be."""
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self._sending:
            sock = self._conn.sock
            if sock is None:
                raise OSError("the stream is closed")
            sock.sendall(header + mask + masked)

    def recv(self) -> bytes | None:
        """The next data message; None once the server closed the stream."""
        message = b""
        while True:
            first, second = self._read(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == CLOSE:
                return None
            if opcode == PING:
                self.send(payload, PONG)
                continue
            if opcode == PONG:
                continue
            message += payload
            if first & 0x80:  # FIN: the last fragment of the message
                return message

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.send(struct.pack("!H", 1000), CLOSE)
        self._conn.close()

    def _read(self, size: int) -> bytes:
        data = self._reader.read(size) if size else b""
        if len(data) < size:
            raise TransportError("the stream was cut off (the connection closed mid-frame)")
        return data


def open_websocket(
    transport: Transport, path: str, params: Sequence[tuple[str, str]], protocols: Sequence[str]
) -> WebSocket:
    """Upgrade a GET on ``path`` to a WebSocket speaking one of ``protocols``."""
    from ant.kube import stdhttp

    parts = urlsplit(transport.server)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = stdhttp.tls_context(transport.verify, transport.auth.client_cert())
        conn = stdhttp.HTTPSConnection(
            parts.hostname or "",
            parts.port,
            transport.tls_server_name,
            context=context,
            timeout=transport.connect_timeout,
        )
    else:
        conn = http.client.HTTPConnection(
            parts.hostname or "", parts.port, timeout=transport.connect_timeout
        )
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        **transport.auth.headers(),
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Protocol": ", ".join(protocols),
        "User-Agent": USER_AGENT,
    }
    url = f"{parts.path.rstrip('/')}{path}?{urlencode(list(params))}"
    try:
        conn.request("GET", url, headers=headers)
        resp = conn.getresponse()
    except OSError as e:
        conn.close()
        raise TransportError(f"cannot reach {parts.netloc}: {stdhttp.reason(e)}") from e
    if resp.status != 101:
        reply = stdhttp.Reply(resp.status, resp.reason, resp.headers, resp.read(), url)
        conn.close()
        raise api_error_of(reply)
    accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    if resp.headers.get("Sec-WebSocket-Accept") != accept:
        conn.close()
        raise DecodeError("the server's WebSocket handshake is wrong (Sec-WebSocket-Accept)")
    assert conn.sock is not None
    conn.sock.settimeout(None)  # a command runs as long as it runs
    return WebSocket(conn, resp.fp, resp.headers.get("Sec-WebSocket-Protocol", ""))


# ---- exec ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    message: str = ""  # why it failed, when the server said more than an exit code
    stdout: bytes = b""  # what it wrote, when the caller collected it (ant.Client.exec)
    stderr: bytes = b""


def exec_command(
    transport: Transport,
    namespace: str,
    pod: str,
    command: Sequence[str],
    *,
    container: str | None = None,
    on_stdout: Callable[[bytes], None],
    on_stderr: Callable[[bytes], None],
) -> ExecResult:
    """Run ``command`` in the pod (no stdin, no terminal) and relay its output as it
    comes; its exit code (0 on ``Success``) once the error channel says it ended."""
    params = [("command", c) for c in command] + [("stdout", "true"), ("stderr", "true")]
    if container:
        params.append(("container", container))
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"
    ws = open_websocket(transport, path, params, CHANNEL_PROTOCOLS)
    try:
        while True:
            message = ws.recv()
            if message is None:
                return ExecResult(0)  # closed without a status: an old server, ended
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel == STDOUT:
                on_stdout(data)
            elif channel == STDERR:
                on_stderr(data)
            elif channel == ERROR and data:
                return exec_status(data)
    finally:
        ws.close()


def exec_status(data: bytes) -> ExecResult:
    """The exit of an exec from the Status on the error channel."""
    try:
        status = json.loads(data)
    except ValueError:
        return ExecResult(1, data.decode(errors="replace").strip())
    if status.get("status") == "Success":
        return ExecResult(0)
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return ExecResult(int(cause.get("message", "1")))
            except ValueError:
                break
    message = str(status.get("message", "the command failed"))
    # Some runtimes (kwok's local exec) report the exit only in the text: "exit status 3".
    code = re.search(r"exit status (\d+)$", message)
    return ExecResult(int(code.group(1))) if code else ExecResult(1, message)


# ---- port-forward ------------------------------------------------------------------------
PORT_FORWARD_PROTOCOLS = ("v4.channel.k8s.io",)


def forward_connection(
    transport: Transport,
    namespace: str,
    pod: str,
    port: int,
    local: socket.socket,
    on_error: Callable[[str], None],
) -> None:
    """Relay one accepted local connection to ``port`` in the pod until either side ends.
    Errors after the stream opened (the pod refused the port) go to ``on_error``."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward"
    ws = open_websocket(transport, path, [("ports", str(port))], PORT_FORWARD_PROTOCOLS)
    first: set[int] = set()  # channels whose port-number message has been read

    def pump_out() -> None:  # local -> pod
        try:
            while data := local.recv(65536):
                ws.send(bytes([0]) + data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                ws.close()

    sender = threading.Thread(target=pump_out, daemon=True, name=f"forward-{port}")
    sender.start()
    try:
        while (message := ws.recv()) is not None:
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel not in first:
                first.add(channel)
                data = data[2:]  # the port number
            if channel == 0 and data:
                local.sendall(data)
            elif channel == 1 and data:
                on_error(data.decode(errors="replace").strip())
    except (OSError, TransportError):
        pass  # either side went away: this connection is over
    finally:
        with contextlib.suppress(OSError):
            local.close()
        ws.close()


def serve_port_forward(
    transport: Transport,
    namespace: str,
    pod: str,
    local_port: int,
    remote_port: int,
    *,
    on_ready: Callable[[int], None],
    on_error: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Listen on 127.0.0.1:``local_port`` (0: any free port, told to ``on_ready``) and
    forward every connection to ``remote_port`` in the pod, until ``stop`` is set (or the
    caller is interrupted). Checks the forward works before saying it is ready."""
    with socket.create_server(("127.0.0.1", local_port)) as listener:
        listener.settimeout(0.5)  # to notice ``stop``
        # One stream now, so a refusal (403, 404) is an error here, not at first use.
        open_websocket(
            transport,
            f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward",
            [("ports", str(remote_port))],
            PORT_FORWARD_PROTOCOLS,
        ).close()
        on_ready(listener.getsockname()[1])
        while stop is None or not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(
                target=_forward_quietly,
                args=(transport, namespace, pod, remote_port, conn, on_error),
                daemon=True,
                name=f"forward-{remote_port}",
            ).start()


def _forward_quietly(
    transport: Transport,
    namespace: str,
    pod: str,
    port: int,
    conn: socket.socket,
    on_error: Callable[[str], None],
) -> None:
    try:
        forward_connection(transport, namespace, pod, port, conn, on_error)
    except AntError as e:  # this connection could not be forwarded; the next may be
        on_error(str(e))
        conn.close()
