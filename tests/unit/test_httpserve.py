"""The tests' one HTTP server (tests/httpserve.py): serves a directory, stops, names a taken port."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.httpserve import serving


def test_serving_serves_the_directory_and_stops(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    with serving(tmp_path) as url, urllib.request.urlopen(f"{url}/a.txt", timeout=10) as response:
        assert response.read() == b"hello"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/a.txt", timeout=2)


def test_a_taken_port_is_one_line_naming_it(tmp_path: Path) -> None:
    with serving(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(pytest.fail.Exception, match=rf"127\.0\.0\.1:{port} is taken"), serving(tmp_path, port=port):
            pass
