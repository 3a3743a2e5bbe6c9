"""Image outputs in the shared cache (composer/farm/imageshare.py): signed entries, streamed blobs checked before
they are used, refused entries built instead; over a directory, a static HTTP server and moto's S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.farm import imageshare
from composer.farm.cache import DirStore, open_store
from composer.farm.imageshare import SharedImages
from composer.trust.keys import generate, load_public_key, load_signing_key
from tests.httpserve import serving

KEY = "ab" * 32
RECORD = {"name": "iso", "type": "iso", "firmware": ["bios"], "boot": {"medium": "cdrom"}}


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    key, pub, _ = generate("farm", tmp_path / "keys")
    return key, pub


@pytest.fixture()
def built(tmp_path: Path) -> list[Path]:
    d = tmp_path / "built"
    d.mkdir()
    (d / "disk.raw").write_bytes(b"\0" * 3_000_000 + b"disk")      # more than one streamed chunk
    (d / "contents.json").write_bytes(b'{"files": []}')
    return [d / "disk.raw", d / "contents.json"]


def shared(store_root: Path, key: Path) -> SharedImages:
    signer = load_signing_key(key)
    return SharedImages(store=DirStore(store_root), public=signer.public, signer=signer)


def test_a_pushed_output_comes_back_verified(tmp_path: Path, keys: tuple[Path, Path], built: list[Path]) -> None:
    s = shared(tmp_path / "shared", keys[0])
    assert imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    out = tmp_path / "out"
    out.mkdir()
    record = imageshare.fetch(s, KEY, out, warn=pytest.fail)
    assert record is not None and record["name"] == "iso"
    assert [f["path"] for f in record["files"]] == ["disk.raw", "contents.json"]
    for path in built:
        assert (out / path.name).read_bytes() == path.read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no scratch left


def test_absent_is_a_quiet_miss(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    assert imageshare.fetch(shared(tmp_path / "s", keys[0]), KEY, tmp_path, warn=pytest.fail) is None


def _refused(tmp_path: Path, s: SharedImages) -> str:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    said: list[str] = []
    assert imageshare.fetch(s, KEY, out, warn=said.append) is None
    assert not list(out.iterdir()), "nothing of a refused entry reaches the build"
    assert len(said) == 1 and "building instead" in said[0], said
    return said[0]


def test_a_tampered_blob_is_refused(tmp_path: Path, keys: tuple[Path, Path], built: list[Path]) -> None:
    s = shared(tmp_path / "shared", keys[0])
    imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    blob = next(p for p in (tmp_path / "shared" / "blobs").iterdir() if p.stat().st_size > 1000)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    assert "does not match its signed sha256" in _refused(tmp_path, s)


def test_an_entry_signed_by_another_key_is_refused(tmp_path: Path, keys: tuple[Path, Path],
                                                   built: list[Path]) -> None:
    other, _, _ = generate("other", tmp_path / "keys")
    imageshare.push(shared(tmp_path / "shared", other), KEY, RECORD, built, warn=pytest.fail)
    assert "signed by another key" in _refused(tmp_path, shared(tmp_path / "shared", keys[0]))


def test_an_entry_moved_to_other_inputs_is_refused(tmp_path: Path, keys: tuple[Path, Path],
                                                   built: list[Path]) -> None:
    s = shared(tmp_path / "shared", keys[0])
    imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    other = "cd" * 32
    (tmp_path / "shared" / "images" / f"{KEY}.json").rename(tmp_path / "shared" / "images" / f"{other}.json")
    said: list[str] = []
    assert imageshare.fetch(s, other, tmp_path, warn=said.append) is None
    assert "signed for other inputs" in said[0]


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 300])
def test_a_file_name_that_is_not_one_plain_segment_is_refused(tmp_path: Path, keys: tuple[Path, Path],
                                                              name: str) -> None:
    signer = load_signing_key(keys[0])
    entry = imageshare.make_entry(KEY, RECORD, [(name, "0" * 64, 1)], signer)
    record, files, why = imageshare.check_entry(entry, KEY, signer.public)
    assert why == "bad file list" and not files and not record


def test_a_blob_longer_than_its_signed_size_is_refused(tmp_path: Path, keys: tuple[Path, Path],
                                                       built: list[Path]) -> None:
    s = shared(tmp_path / "shared", keys[0])
    imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    entry = json.loads((tmp_path / "shared" / "images" / f"{KEY}.json").read_bytes())
    sha = entry["signed"]["files"][1][1]
    (tmp_path / "shared" / "blobs" / sha).write_bytes(b"x" * 10_000)   # the contents.json blob, now far longer
    assert "missing or too long" in _refused(tmp_path, s)


def test_read_only_never_writes(tmp_path: Path, keys: tuple[Path, Path], built: list[Path]) -> None:
    ro = SharedImages(store=open_store(str(tmp_path / "shared"), read_only=True),
                      public=load_public_key(keys[1]), signer=None)
    assert not imageshare.push(ro, KEY, RECORD, built, warn=pytest.fail)
    assert not (tmp_path / "shared").exists()


def test_over_http_a_static_server_serves_what_a_directory_holds(tmp_path: Path, keys: tuple[Path, Path],
                                                                 built: list[Path]) -> None:
    imageshare.push(shared(tmp_path / "shared", keys[0]), KEY, RECORD, built, warn=pytest.fail)
    out = tmp_path / "out"
    out.mkdir()
    with serving(tmp_path / "shared") as url:
        s = SharedImages(store=open_store(url, read_only=True), public=load_public_key(keys[1]), signer=None)
        assert imageshare.fetch(s, KEY, out, warn=pytest.fail) is not None
        assert imageshare.fetch(s, "ef" * 32, out, warn=pytest.fail) is None   # a 404 is a miss
    assert (out / "disk.raw").read_bytes() == built[0].read_bytes()


def test_an_unreachable_store_is_a_warning_and_a_build(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    s = SharedImages(store=open_store("http://127.0.0.1:9/shared", read_only=True), public=load_public_key(keys[1]),
                     signer=None)
    said: list[str] = []
    assert imageshare.fetch(s, KEY, tmp_path, warn=said.append) is None
    assert "cannot connect" in said[0] and "building instead" in said[0]


def test_the_settings_need_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    monkeypatch.delenv("VCOMP_SHARED_CACHE", raising=False)
    assert imageshare.from_settings() is None
    monkeypatch.setenv("VCOMP_SHARED_CACHE", str(tmp_path / "shared"))
    monkeypatch.delenv("VCOMP_SHARED_CACHE_KEY", raising=False)
    with pytest.raises(UserError, match="VCOMP_SHARED_CACHE_KEY"):
        imageshare.from_settings()
    monkeypatch.setenv("VCOMP_SHARED_CACHE_KEY", str(keys[1]))
    found = imageshare.from_settings()
    assert found is not None and found.signer is None        # a .pub: read only
    monkeypatch.setenv("VCOMP_SHARED_CACHE_KEY", str(keys[0]))
    found = imageshare.from_settings()
    assert found is not None and found.signer is not None


def test_over_s3(tmp_path: Path, keys: tuple[Path, Path], built: list[Path], s3: str) -> None:
    signer = load_signing_key(keys[0])
    s = SharedImages(store=open_store(f"s3://{s3}/cache"), public=signer.public, signer=signer)
    assert imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    out = tmp_path / "out"
    out.mkdir()
    assert imageshare.fetch(s, KEY, out, warn=pytest.fail) is not None
    assert (out / "disk.raw").read_bytes() == built[0].read_bytes()


def test_an_entry_for_another_output_or_with_a_malformed_record_is_refused(tmp_path: Path, keys: tuple[Path, Path],
                                                                         built: list[Path]) -> None:
    s = shared(tmp_path / "shared", keys[0])
    imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    said: list[str] = []
    assert imageshare.fetch(s, KEY, tmp_path, warn=said.append, expect={"name": "disk", "type": "disk"}) is None
    assert "another output" in said[0] and not (tmp_path / "disk.raw").exists()
    imageshare.push(s, KEY, {**RECORD, "boot": {"medium": 3}}, built, warn=pytest.fail)
    said.clear()
    assert imageshare.fetch(s, KEY, tmp_path, warn=said.append) is None
    assert "malformed" in said[0]


@pytest.mark.parametrize("data", [
    b'{"signed": {"key": "k", "record": {}, "files": [["a", "' + b"0" * 64 + b'", 1e400]]}, "signature": "x"}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"signed": {"key": "k", "record": {"name": "\\ud800"}, "files": []}, "signature": "x"}',
    b'{"signed": {"files": 7}, "signature": "x"}',
    b"\xff\xfe not json",
])
def test_garbage_in_the_store_is_refused_never_raised(keys: tuple[Path, Path], data: bytes) -> None:
    record, files, why = imageshare.check_entry(data, KEY, load_public_key(keys[1]))
    assert why and not files and not record


@pytest.mark.parametrize("job", [
    {"profile": "-h", "arch": "x86_64", "output": "iso"},
    {"profile": "p.yaml\x00", "arch": "x86_64", "output": "iso"},
    {"profile": "p.yaml", "arch": "x86_64 --oops", "output": "iso"},
    {"profile": "p.yaml", "arch": "x86_64", "output": "../iso"},
    {"profile": "p.yaml", "arch": "x86_64"},
    {"profile": 3, "arch": "x86_64", "output": "iso"},
])
def test_a_hostile_matrix_is_one_error(job: dict[str, object]) -> None:
    from composer.farm.images import parse_matrix
    with pytest.raises(UserError, match="not a build matrix"):
        parse_matrix(json.dumps({"include": [job]}).encode(), "m.json")


def test_a_deep_matrix_is_one_error() -> None:
    from composer.farm.images import parse_matrix
    with pytest.raises(UserError, match="not a build matrix"):
        parse_matrix(b"[" * 100_000 + b"]" * 100_000, "m.json")
    assert parse_matrix(b'{"include": [{"profile": "p.yaml", "arch": "x86_64", "output": "iso"}]}', "m")[0].arch \
        == "x86_64"


def test_a_blob_the_store_holds_is_not_uploaded_again(tmp_path: Path, keys: tuple[Path, Path],
                                                      built: list[Path]) -> None:
    s = shared(tmp_path / "shared", keys[0])
    imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    blobs = {p.name: p.stat().st_ino for p in (tmp_path / "shared" / "blobs").iterdir()}
    imageshare.push(s, "cd" * 32, RECORD, built, warn=pytest.fail)   # the same files for other inputs
    assert {p.name: p.stat().st_ino for p in (tmp_path / "shared" / "blobs").iterdir()} == blobs
    assert (tmp_path / "shared" / "images" / f"{'cd' * 32}.json").is_file()


def test_over_s3_a_held_blob_is_not_uploaded_again(tmp_path: Path, keys: tuple[Path, Path], built: list[Path],
                                                   s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = load_signing_key(keys[0])
    s = SharedImages(store=open_store(f"s3://{s3}/cache"), public=signer.public, signer=signer)
    imageshare.push(s, KEY, RECORD, built, warn=pytest.fail)
    uploads: list[str] = []
    client = s.store.client  # type: ignore[attr-defined]
    real = client.upload_file
    monkeypatch.setattr(client, "upload_file", lambda *a, **k: (uploads.append(a[2]), real(*a, **k)))
    imageshare.push(s, "cd" * 32, RECORD, built, warn=pytest.fail)
    assert uploads == []
