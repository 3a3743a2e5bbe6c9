"""Images as TUF targets over real loopback HTTP: publish a chunk index into the real test repository, fetch
a new image seeded from the old one, and servers that send bad chunks (other bytes, truncated, endless)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

from composer.cli.main import main
from composer.errors import FetchError, VerificationError
from composer.repo.serve import serve_in_thread
from composer.update.publish import add_image
from composer.update.remote import fetch_image
from tests.repo_fixtures import Repo

pytestmark = pytest.mark.integration
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def images(tmp_path: Path) -> tuple[Path, Path]:
    """An old image and a new one that differs in one small place (2 MB of noise, then 1 MB of zeros)."""
    old = random.Random(7).randbytes(2 << 20) + bytes(1 << 20)
    new = old[:700_000] + b"hostname=new\n" + old[700_013:]
    (tmp_path / "old.img").write_bytes(old)
    (tmp_path / "new.img").write_bytes(new)
    return tmp_path / "old.img", tmp_path / "new.img"


@pytest.fixture()
def published(repo: Repo, tmp_path: Path) -> tuple[Path, Path]:
    old, new = images(tmp_path)
    add_image(repo.store, new, "device-x86_64")
    return old, new


@contextlib.contextmanager
def serving(directory: Path, chunk: Callable[[http.server.SimpleHTTPRequestHandler, bytes], None] | None = None) \
        -> Iterator[str]:
    """The repository over HTTP; ``chunk(handler, true_bytes)`` answers for chunks when given (a hostile store)."""
    if chunk is None:
        server, url = serve_in_thread(directory)
    else:
        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                if "/targets/chunks/" in self.path:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        chunk(self, Path(self.translate_path(self.path)).read_bytes())
                    return
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler,
                                                                                     directory=str(directory)))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_an_image_update_transfers_only_the_changed_chunks(repo: Repo, published: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    old, new = published
    with serving(repo.dir) as url:
        report = fetch_image(repo.client(url=url), "device-x86_64", [old], tmp_path / "slot-b")
    assert (tmp_path / "slot-b").read_bytes() == new.read_bytes()
    assert report.fetched_chunks <= 2 and report.transferred_bytes < new.stat().st_size // 10
    assert report.reused_bytes + report.fetched_bytes == report.size


def test_the_cli_fetches_with_json(repo: Repo, published: tuple[Path, Path], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = published
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    (tmp_path / "root.json").write_bytes(repo.root_bytes)
    with serving(repo.dir) as url:
        assert main(["image", "fetch", "device-x86_64", "--repo", url, "--root", str(tmp_path / "root.json"),
                     "--seed", str(old), "--out", str(tmp_path / "out.img"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads((SCHEMAS / "image-fetch.schema.json").read_text()))
    assert doc["size"] == new.stat().st_size and doc["fetched-chunks"] >= 1
    assert (tmp_path / "out.img").read_bytes() == new.read_bytes()


def test_an_image_not_published_is_a_clear_error(repo: Repo, published: tuple[Path, Path], tmp_path: Path) -> None:
    with serving(repo.dir) as url, pytest.raises(FetchError, match="no target 'index/other.caidx.json'"):
        fetch_image(repo.client(url=url), "other", [published[0]], tmp_path / "out")


def test_a_tampered_chunk_index_fails_its_signed_hash(repo: Repo, published: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    stored = next((repo.dir / "targets" / "index").glob("*.device-x86_64.caidx.json"))
    doc = json.loads(stored.read_bytes())
    doc["chunks"][0][0] = "0" * 64
    stored.write_bytes(json.dumps(doc).encode())
    with serving(repo.dir) as url, pytest.raises(VerificationError, match="caidx.json"):
        fetch_image(repo.client(url=url), "device-x86_64", [], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def other_bytes(h: http.server.SimpleHTTPRequestHandler, data: bytes) -> None:
    body = bytes(len(data))
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def truncated(h: http.server.SimpleHTTPRequestHandler, data: bytes) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data[: len(data) // 2])
    h.close_connection = True


def endless(h: http.server.SimpleHTTPRequestHandler, data: bytes) -> None:
    h.send_response(200)
    h.end_headers()
    for _ in range(2000):        # 128 MB if nobody stops reading
        h.wfile.write(b"\0" * 65536)


@pytest.mark.parametrize(("attack", "error", "message"), [
    (other_bytes, VerificationError, r"chunk \d+ \(.*not a zstd chunk"),
    (truncated, FetchError, r"targets/chunks/.*\.cacnk: download failed"),
    (endless, FetchError, r"targets/chunks/.*\.cacnk: file longer than allowed"),
])
def test_a_hostile_chunk_server_is_one_error_and_nothing_written(
        repo: Repo, published: tuple[Path, Path], tmp_path: Path, attack: Callable[..., None],
        error: type[Exception], message: str) -> None:
    dest = tmp_path / "slot-b"
    dest.write_bytes(b"the inactive slot, untouched")
    with serving(repo.dir, attack) as url, pytest.raises(error, match=message):
        fetch_image(repo.client(url=url), "device-x86_64", [published[0]], dest)
    assert dest.read_bytes() == b"the inactive slot, untouched"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_cli_publishes_an_image_with_json(repo: Repo, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, new = images(tmp_path)
    assert main(["repo", "add-image", str(repo.dir), str(new), "--name", "device-x86_64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads((SCHEMAS / "repo-add-image.schema.json").read_text()))
    assert doc["target"] == "index/device-x86_64.caidx.json" and doc["new-chunks"] < doc["chunks"]  # zeros: once
    assert main(["repo", "add-image", str(repo.dir), str(new), "--name", "Bad Name"]) != 0
    assert "image name 'Bad Name' is not valid" in capsys.readouterr().err


def test_a_local_store_round_trip_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = images(tmp_path)
    assert main(["image", "chunk", str(new), "--store", str(tmp_path / "store"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads((SCHEMAS / "image-chunk.schema.json").read_text()))
    assert main(["image", "chunk", str(old), "--store", str(tmp_path / "store"), "--index",
                 str(tmp_path / "old.caidx.json")]) == 0
    assert main(["image", "fetch", doc["index"], "--store", str(tmp_path / "store"), "--seed", str(old),
                 "--seed-index", str(tmp_path / "old.caidx.json"), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_bytes() == new.read_bytes()


def test_the_index_is_listed_again_by_every_publish(repo: Repo, published: tuple[Path, Path], tmp_path: Path) -> None:
    from composer.repo import edit
    edit.publish(repo.store)
    with serving(repo.dir) as url:
        report = fetch_image(repo.client(url=url), "device-x86_64", [published[0]], tmp_path / "out")
    assert report.fetched_chunks >= 1 and (tmp_path / "out").read_bytes() == published[1].read_bytes()


def test_a_mirror_carries_the_images_and_serves_them(repo: Repo, published: tuple[Path, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    (tmp_path / "root.json").write_bytes(repo.root_bytes)
    with serving(repo.dir) as url:
        assert main(["repo", "mirror", url, str(tmp_path / "mirror"), "--root", str(tmp_path / "root.json"),
                     "--arch", "x86_64"]) == 0
    with serving(tmp_path / "mirror") as url:
        report = fetch_image(repo.client(url=url), "device-x86_64", [published[0]], tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == published[1].read_bytes() and report.fetched_chunks >= 1
