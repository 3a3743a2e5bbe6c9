"""Static HTTP for a repository: serves metadata/ and targets/ only, on 127.0.0.1 by default.

HTTP/1.1 with keep-alive (every response, errors included, carries its Content-Length); an idle or
stalled client connection is closed after IDLE_SECONDS. Given an access log, every request is one line of the
Common Log Format in it (``vcomp repo stats`` reads it; docs/stats.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from composer.stats.clf import format_line

SERVED = ("/metadata/", "/targets/")
IDLE_SECONDS = 30.0


class AccessLog:
    """Lines of the Common Log Format appended to an open file, one write per request (threads share it)."""

    def __init__(self, f: IO[str], clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.file = f
        self.clock = clock
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    access_log: AccessLog | None = None
    _status = 0
    _length: int | None = None
    timeout = IDLE_SECONDS  # per socket operation on the client's connection: idle keep-alives end
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall each

    def translate_path(self, path: str) -> str:
        """Confine every request (GET and HEAD, after decoding) to metadata/ and targets/."""
        full = Path(super().translate_path(path)).resolve()
        base = Path(self.directory).resolve()
        if not any(full.is_relative_to(base / d.strip("/")) for d in SERVED):
            return str(base / "metadata" / ".not-served")  # does not exist: 404
        return str(full)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's, except that a 404 keeps the connection open (ngclient's probe for the next root
        version is a 404 on every refresh): a short body with its Content-Length, no 'Connection: close'."""
        if code != 404:
            super().send_error(code, message, explain)
            return
        body = b"not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def list_directory(self, path: Any) -> None:
        self.send_error(404, "no directory listings")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Remember the status; the line is written when the response is complete (its length known)."""
        self._status = int(code) if str(code).isdigit() else 0
        self._length = None

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-length" and value.isdigit():
            self._length = int(value)
        super().send_header(keyword, value)

    def handle_one_request(self) -> None:
        self._status = 0
        super().handle_one_request()
        if self.access_log is not None and self._status:
            sent = 0 if self.command == "HEAD" else self._length
            self.access_log.write(format_line(host=str(self.client_address[0]), when=self.access_log.clock(),
                                              request=self.requestline, status=self._status, size=sent))
            self._status = 0


def make_server(directory: Path, port: int = 0, host: str = "127.0.0.1",
                access_log: AccessLog | None = None) -> http.server.ThreadingHTTPServer:
    handler_class = type("Handler", (_Handler,), {"access_log": access_log})
    handler = functools.partial(handler_class, directory=str(directory))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(directory: Path, port: int = 0,
                    access_log: AccessLog | None = None) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; return it and its base URL (for tests and the demo)."""
    server = make_server(directory, port, access_log=access_log)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, real_port = server.server_address[:2]
    return server, f"http://{host!s}:{real_port}"
