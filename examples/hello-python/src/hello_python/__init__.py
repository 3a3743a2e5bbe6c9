"""hello-python: a small HTTP service answering its greeting as YAML (PyYAML, Debian's python3-yaml).

``hello-python serve --port 8081`` serves it; ``hello-python get --port 8081`` fetches it from the running service
and prints its greeting line; ``hello-python`` alone prints the line.
"""

from __future__ import annotations

import argparse
import http.server
import platform
import sys
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hello-python")
    parser.add_argument("mode", nargs="?", choices=["line", "serve", "get"], default="line")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        print(greeting(), flush=True)
        http.server.HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    elif args.mode == "get":
        with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/", timeout=30) as answer:
            print(yaml.safe_load(answer.read())["greeting"])
    else:
        print(greeting())
    return 0


if __name__ == "__main__":
    sys.exit(main())
