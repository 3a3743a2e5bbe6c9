"""Static HTTP for a repository: serves metadata/ and targets/ only, on 127.0.0.1 by default."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any

SERVED = ("/metadata/", "/targets/")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        """Confine every request (GET and HEAD, after decoding) to metadata/ and targets/."""
        full = Path(super().translate_path(path)).resolve()
        base = Path(self.directory).resolve()
        if not any(full.is_relative_to(base / d.strip("/")) for d in SERVED):
            return str(base / "metadata" / ".not-served")  # does not exist: 404
        return str(full)

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
