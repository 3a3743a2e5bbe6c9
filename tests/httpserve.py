"""One threaded HTTP server on 127.0.0.1 for the tests that serve a directory (repositories, update chunks)."""

from __future__ import annotations

import contextlib
import errno
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


class Quiet(http.server.SimpleHTTPRequestHandler):
    """Serves a directory without writing a line per request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@contextlib.contextmanager
def serving(directory: Path, *, port: int = 0,
            handler: type[http.server.SimpleHTTPRequestHandler] = Quiet) -> Iterator[str]:
    """``directory`` served on 127.0.0.1:``port`` (0: any free port) while the block runs; yields its URL."""
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                 functools.partial(handler, directory=str(directory)))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            pytest.fail(f"127.0.0.1:{port} is taken: the test serves there (a profile names the port); "
                        "stop what listens there")
        raise
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
