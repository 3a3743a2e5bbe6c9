"""hello-python: a small HTTP service answering its greeting as YAML (PyYAML, Debian's python3-yaml).

``hello-python serve --port 8081`` serves it; ``hello-python get --port 8081`` fetches it from the running service
and prints its greeting line; ``hello-python`` alone prints the line.
"""

from __future__ import annotations

import argparse
import http.server
import platform
import sys
import time
import urllib.error
import urllib.request

import yaml


def greeting() -> str:
    return f"hello-python: Python {platform.python_version()} on {platform.machine()} with PyYAML {yaml.__version__}"


def document() -> bytes:
    return yaml.safe_dump({"greeting": greeting(), "service": "hello-python"}, sort_keys=True).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = document()
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def fetch(port: int, wait: float) -> str:
    """The greeting the running service answers (retried while it is not listening yet)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
                return str(yaml.safe_load(answer.read())["greeting"])
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hello-python")
    parser.add_argument("mode", nargs="?", choices=["line", "serve", "get"], default="line")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--wait", type=float, default=60, help="get: seconds to wait for the service")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        print(greeting(), flush=True)
        http.server.HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    elif args.mode == "get":
        print(fetch(args.port, args.wait))
    else:
        print(greeting())
    return 0


if __name__ == "__main__":
    sys.exit(main())
