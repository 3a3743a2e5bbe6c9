"""The debuginfod HTTP server: answers :func:`composer.debug.protocol.resolve` from the store's objects.

GET and HEAD only; 127.0.0.1 unless told otherwise; every answer carries its Content-Length (HTTP/1.1 keep-alive,
like :mod:`composer.repo.serve`); an unknown or hostile request is 404 without a lookup. A section request is
answered with that section's bytes, read from the stored debug file (or else the executable). Headers as
elfutils' server sends them: ``X-Debuginfod-Size``, ``X-Debuginfod-File`` (the path in the package) and
``X-Debuginfod-Archive`` (the package).
"""

from __future__ import annotations

import http.server
import shutil
import threading
from typing import Any

from composer.debug.buildid import read_section
from composer.debug.index import Store
from composer.debug.protocol import BuildIdIndex, Located, Request, parse_request, resolve, section_sources

IDLE_SECONDS = 30.0
CHUNK = 1 << 20


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    disable_nagle_algorithm = True
    server: DebuginfodServer

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        request = parse_request(self.path)
        if request is not None and request.kind == "section":
            self._section(request, body)
            return
        found = resolve(self.server.index, request) if request is not None else None
        path = self.server.store.object(found.sha256) if found is not None else None
        if found is None or path is None or not path.is_file():
            self._not_found(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(found.size))
        self._debuginfod_headers(found)
        self.end_headers()
        if body:
            with path.open("rb") as f:
                shutil.copyfileobj(f, self.wfile, CHUNK)

    def _section(self, request: Request, body: bool) -> None:
        """One section of the debug file, else of the executable (read from the stored object)."""
        for found in section_sources(self.server.index, request):
            path = self.server.store.object(found.sha256)
            if not path.is_file():
                continue
            with path.open("rb") as f:
                data = read_section(f, request.section)
            if data is None:
                continue
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self._debuginfod_headers(found, size=len(data))
            self.end_headers()
            if body:
                self.wfile.write(data)
            return
        self._not_found(body)

    def _debuginfod_headers(self, found: Located, size: int | None = None) -> None:
        self.send_header("X-Debuginfod-Size", str(found.size if size is None else size))
        self.send_header("X-Debuginfod-File", "/" + found.path)
        self.send_header("X-Debuginfod-Archive", found.package)

    def _not_found(self, body: bool) -> None:
        data = b"not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log.write(f"{self.address_string()} {format % args}\n")


class DebuginfodServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], index: BuildIdIndex, store: Store, log: Any = None) -> None:
        self.index, self.store, self.log = index, store, log
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve_in_thread(index: BuildIdIndex, store: Store, host: str = "127.0.0.1", port: int = 0) -> DebuginfodServer:
    """A server answering in a daemon thread (tests, ``vcomp debug core``); ``shutdown()`` stops it."""
    server = DebuginfodServer((host, port), index, store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
