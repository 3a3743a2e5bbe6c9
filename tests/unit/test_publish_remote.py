"""Publishing seams (issue 20 item 4): push a repository to a real S3 server (moto's, on 127.0.0.1) and to a
small WebDAV-PUT server (a PUT/MKCOL/DELETE http.server handler below, the shape nginx's dav module has), then
read it back over plain HTTP with the real client.

The consistency test refreshes two readers after every single upload of a push (a reader that trusted the
old state and a new one): each sees the old repository or the new one, never a mix.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from composer.errors import ComposerError, UserError
from composer.repo import edit
from composer.repo import push as push_mod
from composer.repo.client import RepositoryClient
from composer.repo.push import Upload, plan, push
from composer.repo.remotes import open_destination
from tests.httpserve import Quiet, serving
from tests.repo_fixtures import ARCH, Repo

pytest.importorskip("moto.server")


# ---------------------------------------------------------------- servers

class DavHandler(Quiet):
    """GET/HEAD from the directory, plus PUT (atomic: temporary file and rename), MKCOL and DELETE.
    A PUT whose parent collection is missing is a 409, as WebDAV says."""

    def _local(self) -> Path:
        return Path(self.translate_path(self.path))

    def _answer(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        dest = self._local()
        if not dest.parent.is_dir():
            self._answer(409)
            return
        length = int(self.headers["Content-Length"])
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".put-")
        with os.fdopen(fd, "wb") as f:
            while length:
                chunk = self.rfile.read(min(length, 1 << 16))
                f.write(chunk)
                length -= len(chunk)
        os.chmod(tmp, 0o644)
        existed = dest.exists()
        os.replace(tmp, dest)
        self._answer(204 if existed else 201)

    def do_MKCOL(self) -> None:
        dest = self._local()
        if dest.exists():
            self._answer(405)
        elif not dest.parent.is_dir():
            self._answer(409)
        else:
            dest.mkdir()
            self._answer(201)

    def do_DELETE(self) -> None:
        dest = self._local()
        if dest.is_file():
            dest.unlink()
            self._answer(204)
        else:
            self._answer(404)


@dataclass(frozen=True)
class Remote:
    to: str        # what --to takes
    read: str      # what a client reads over HTTP


@contextlib.contextmanager
def remote(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    if kind == "s3":
        bucket = request.getfixturevalue("s3")
        endpoint = request.getfixturevalue("s3_endpoint")
        yield Remote(to=f"s3://{bucket}/vcomp/stable", read=f"{endpoint}/{bucket}/vcomp/stable")
        return
    served = tmp_path / "www"
    (served / "repos").mkdir(parents=True)
    with serving(served, handler=DavHandler) as url:
        yield Remote(to=f"dav+{url}/repos/stable", read=f"{url}/repos/stable")


def reader(repo: Repo, url: str, cache: Path) -> RepositoryClient:
    return RepositoryClient(url, repo.root_bytes, cache, fallback=False)


# ---------------------------------------------------------------- tests

def test_the_upload_order_keeps_readers_consistent(repo: Repo) -> None:
    order = [u.key for u in plan(repo.dir)]
    first_meta = next(i for i, k in enumerate(order) if k.startswith("metadata/"))
    assert all(k.startswith("targets/") for k in order[:first_meta])
    assert all(k.startswith("metadata/") for k in order[first_meta:])
    snapshots = [i for i, k in enumerate(order) if k.endswith(".snapshot.json")]
    others = [i for i, k in enumerate(order) if k.startswith("metadata/")
              and not k.endswith((".snapshot.json", "root.json", "timestamp.json"))]
    assert max(others) < min(snapshots)
    assert order[-2:] == ["metadata/root.json", "metadata/timestamp.json"]
    assert not any("/." in k for k in order)


@pytest.mark.parametrize("kind", ["s3", "dav"])
def test_push_then_read_over_http_and_stay_consistent_mid_upload(
        kind: str, repo: Repo, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with remote(kind, request, tmp_path) as r:
        first = push(repo.dir, open_destination(r.to))
        assert first.uploaded == len(plan(repo.dir)) and first.skipped == 0
        warm = tmp_path / "warm"
        old = reader(repo, r.read, warm).metadata("hello", ARCH)
        reader(repo, r.read, tmp_path / "cold").fetch(old)    # verified package bytes over HTTP
        again = push(repo.dir, open_destination(r.to))
        assert again.uploaded == 2, "only root.json and timestamp.json are sent again"

        edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
        edit.publish(repo.store)
        seen: list[str] = []

        def refresh(u: Upload) -> None:
            for cache in (warm, tmp_path / f"fresh-{len(seen)}"):
                seen.append(reader(repo, r.read, cache).metadata("hello", ARCH).version)

        result = push(repo.dir, open_destination(r.to), after=refresh)
        assert 0 < result.uploaded < len(plan(repo.dir))
        assert set(seen) == {old.version, "1.2.0"}
        assert seen[-2:] == ["1.2.0", "1.2.0"], "the new state once timestamp.json is there"
        assert seen[:-2] == [old.version] * (len(seen) - 2), "the old state until then"
        new = reader(repo, r.read, tmp_path / "after").metadata("hello", ARCH)
        reader(repo, r.read, tmp_path / "after").fetch(new)


def test_cli_publish_and_mirror_to_s3(repo: Repo, s3: str, s3_endpoint: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli.main import main
    assert main(["repo", "publish", str(repo.dir), "--to", f"s3://{s3}/main"]) == 0
    assert "pushed to s3://" in capsys.readouterr().out
    assert main(["repo", "publish", str(repo.dir), "--to", f"s3://{s3}/main", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads((Path(__file__).parents[2] / "schemas" / "repo-publish.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["pushed"]["to"] == f"s3://{s3}/main" and doc["pushed"]["skipped"] > doc["pushed"]["uploaded"] > 0
    assert main(["repo", "publish", str(repo.dir), "--to", f"s3://{s3}/main", "--prune-after", "48"]) == 0
    assert "pruned 0 superseded metadata files" in capsys.readouterr().out
    root = tmp_path / "root.json"
    root.write_bytes(repo.root_bytes)
    src = f"{s3_endpoint}/{s3}/main"
    assert main(["repo", "mirror", src, str(tmp_path / "m"), "--root", str(root), "--arch", ARCH,
                 "--to", f"s3://{s3}/copy"]) == 0
    assert "pushed to s3://" in capsys.readouterr().out
    copy = reader(repo, f"{s3_endpoint}/{s3}/copy", tmp_path / "c")
    assert copy.metadata("hello", ARCH).version == reader(repo, src, tmp_path / "d").metadata("hello", ARCH).version


def _one_line(exc: ComposerError) -> None:
    assert "\n" not in str(exc) and exc.hint


def test_failures_are_one_line_naming_the_object_and_the_fix(repo: Repo, s3: str, tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        push(repo.dir, open_destination(f"s3://{s3}-missing/x"))
    assert "NoSuchBucket" in str(e.value) and "create the bucket" in e.value.hint
    _one_line(e.value)
    (tmp_path / "www").mkdir()
    with serving(tmp_path / "www") as url, pytest.raises(UserError) as f:    # GET only: no PUT
        push(repo.dir, open_destination(f"dav+{url}/r"))
    assert "PUT http://127.0.0.1" in str(f.value) and "/r/targets/" in str(f.value)
    _one_line(f.value)
    for bad in ("ftp://h/x", "dav+http://user:pw@h/x", "s3:///x"):
        with pytest.raises(UserError) as g:
            open_destination(bad)
        _one_line(g.value)


def test_nothing_published_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a published repository"):
        plan(tmp_path)




class FlakyAuthDav(DavHandler):
    """Wants the netrc login, and answers 503 to the first PUT (a retried failure)."""

    failures = 1

    def do_PUT(self) -> None:
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"ci:s3cret").decode():
            self._answer(401)
            return
        if FlakyAuthDav.failures:
            FlakyAuthDav.failures -= 1
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(503)
            return
        super().do_PUT()


def test_dav_credentials_come_from_netrc_and_a_5xx_is_tried_again(repo: Repo, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "www"
    served.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    with serving(served, handler=FlakyAuthDav) as url:
        with pytest.raises(UserError) as e:     # no netrc: the server wants a login
            push(repo.dir, open_destination(f"dav+{url}/r"))
        assert "answered 401" in str(e.value) and "~/.netrc" in e.value.hint
        netrc_file = tmp_path / ".netrc"
        netrc_file.write_text("machine 127.0.0.1 login ci password s3cret\n")
        netrc_file.chmod(0o600)
        result = push(repo.dir, open_destination(f"dav+{url}/r"))
        assert result.uploaded == len(plan(repo.dir)) and FlakyAuthDav.failures == 0
        assert reader(repo, f"{url}/r", tmp_path / "c").metadata("hello", ARCH).version


# ---------------------------------------------------------------- pruning after a grace

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_superseded_metadata_is_pruned_only_after_the_grace() -> None:
    def at(hours: int, *names: str) -> push_mod.Pushed:
        return push_mod.Pushed(time=T0 + dt.timedelta(hours=hours), current=frozenset(names))
    log = [at(0, "1.snapshot.json", "1.alice.json"), at(10, "2.snapshot.json", "1.alice.json"),
           at(30, "3.snapshot.json", "2.alice.json"), at(31, "3.snapshot.json", "2.alice.json")]
    now = T0 + dt.timedelta(hours=40)
    # 1.snapshot was left 40 h ago (at the entry of hour 10), 2.snapshot and 1.alice 10 h ago (hour 30)
    assert push_mod.superseded(log, grace=dt.timedelta(hours=24), now=now) == ["metadata/1.snapshot.json"]
    assert push_mod.superseded(log, grace=dt.timedelta(hours=48), now=now) == []
    assert push_mod.superseded(log, grace=dt.timedelta(0), now=now) == \
        ["metadata/1.alice.json", "metadata/1.snapshot.json", "metadata/2.snapshot.json"]
    again = push_mod.parse_log(push_mod.format_log(log), "here")
    assert again == log[:3], "the same state twice in a row is noted once, at its first time"
    with pytest.raises(UserError, match="not a push log") as e:
        push_mod.parse_log(b'{"pushes": [{"time": "yesterday"}]}', "s3://b/p")
    _one_line(e.value)


@pytest.mark.parametrize("kind", ["s3", "dav"])
def test_prune_keeps_what_readers_need(kind: str, repo: Repo, request: pytest.FixtureRequest,
                                       tmp_path: Path) -> None:
    with remote(kind, request, tmp_path) as r:
        dest = open_destination(r.to)
        clock = iter([T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=50)])
        push(repo.dir, dest, clock=lambda: next(clock))
        first = push_mod.current_metadata(repo.dir)
        warm = tmp_path / "warm"
        reader(repo, r.read, warm).metadata("hello", ARCH)
        for _ in range(2):
            edit.publish(repo.store)        # a new snapshot and index version each time
            push(repo.dir, dest, clock=lambda: next(clock))
        now = T0 + dt.timedelta(hours=60)
        # the first state was left at hour 1 (59 h ago), the second at hour 50 (10 h ago)
        assert push_mod.prune(dest, grace=dt.timedelta(hours=72), now=now) == []
        pruned = push_mod.prune(dest, grace=dt.timedelta(hours=48), now=now)
        current = push_mod.current_metadata(repo.dir)
        assert pruned == sorted(f"metadata/{n}" for n in first - current), pruned
        # (the old states' snapshots, compressed ones included, and index roles)
        assert pruned and all(k.endswith((".snapshot.json", ".index.json", ".zst")) for k in pruned)
        assert not dest.present(pruned)
        assert dest.present([f"metadata/{n}" for n in current]) == {f"metadata/{n}" for n in current}
        assert dest.present(["metadata/1.root.json"])
        assert push_mod.prune(dest, grace=dt.timedelta(hours=48), now=now) == [], "done once"
        assert reader(repo, r.read, warm).metadata("hello", ARCH).version
        assert reader(repo, r.read, tmp_path / "fresh").metadata("hello", ARCH).version
        assert push(repo.dir, dest).uploaded == 2, "a pruned version is not sent again"
