"""Static HTTP for a repository: serves metadata/ and targets/ only, on 127.0.0.1 by default."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any

SERVED = ("/metadata/", "/targets/")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if not self.path.startswith(SERVED) or ".." in self.path:
            self.send_error(404, "not a repository file")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if not self.path.startswith(SERVED):
            self.send_error(404)
            return
        super().do_HEAD()

    def list_directory(self, path: Any) -> None:
        self.send_error(404, "no directory listings")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_server(directory: Path, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Handler, directory=str(directory))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(directory: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; return it and its base URL (for tests and the demo)."""
    server = make_server(directory, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, real_port = server.server_address[:2]
    return server, f"http://{host!s}:{real_port}"
