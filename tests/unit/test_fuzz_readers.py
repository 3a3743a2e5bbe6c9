"""Property tests for every reader of attacker-controlled bytes (issue 11, 'Done when': fuzzing).

Random bytes, random JSON-like structures, deep nesting, huge numbers, wrong types, unicode and NUL,
and random mutations of real documents are fed to the ``.vpk`` reader, the index reader, the profile
loader, the lock reader and the root database reader. Each must either succeed or raise a
ComposerError subclass (never another exception, never RecursionError), within a memory budget
(tracemalloc peak). No wall-clock budget (a hypothesis ``deadline`` flakes on a loaded 2-core machine): the
work a reader may do is bounded by its counted limits (sizes, depth, YAML nodes), tested on their own.
"""

from __future__ import annotations

import copy
import io
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError
from composer.package.archive import open_package, read_header, verify_package
from composer.package.manifest import Entry, Manifest
from composer.pkgmgr import db
from composer.profile.load import load_profile
from composer.repo.index import parse_index
from composer.solve.lock import read_lock
from tests import hostile

MEMORY = 64 << 20  # bytes of Python allocations one read may peak at
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# For readers with a known bug (xfail, strict): fail on the first bad example, without shrinking it.
KNOWN_BAD = settings(FUZZ, max_examples=40, phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)
REPO = Path(__file__).resolve().parents[2]


def within_contract(call: Callable[[], object], *, memory: bool = True) -> None:
    """Run a reader: it may succeed or raise a ComposerError; anything else fails the test.

    ``memory`` traces allocations (tracemalloc) and fails over MEMORY; it makes a RecursionError take
    half a minute to unwind, so the known-bad cases below run without it.
    """
    if memory:
        tracemalloc.start()
    try:
        call()
    except ComposerError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
        if memory:
            tracemalloc.stop()
    assert peak < MEMORY, f"peak {peak} bytes"


# ----------------------------------------------------------------- strategies

HUGE, DEEP = "@@HUGE@@", "@@DEEP@@"
scalars = (st.none() | st.booleans() | st.integers(min_value=-(1 << 80), max_value=1 << 80)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["", "\x00", "../../etc/passwd", "/abs", "a\nb", "\u202e", "\ud7ff", "1.0.0",
                              "x" * 300, HUGE, DEEP]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=12) | st.sampled_from(["format", "packages", "files"]),
                                        inner, max_size=5), max_leaves=25)


def render(value: Any, depth: int, digits: int) -> bytes:
    """JSON text for ``value``; the markers become a number of ``digits`` digits and ``depth`` nested lists."""
    text = json.dumps(value, ensure_ascii=False)
    text = text.replace(json.dumps(HUGE), "9" * digits).replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    return text.encode("utf-8", "surrogatepass")


def paths_of(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_of(v, (*prefix, i))
    return out


@st.composite
def mutations(draw: st.DrawFn, doc: Any) -> bytes:
    """A real document with one subtree replaced (or deleted), as JSON text."""
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(paths_of(doc)))
    new = draw(values)
    if not path:
        doc = new
    else:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = new
    return render(doc, draw(st.sampled_from([3, 200, 50_000])), draw(st.sampled_from([5, 5000])))


HOSTILE = [b"[" * 100_000, b"{\"a\":" * 50_000, b"9" * 10_000, b"\x00", b"\xff\xfe", b""]


def documents(real: Any) -> st.SearchStrategy[bytes]:
    """Mutations of ``real``, random structures, random bytes and hostile classics, as bytes."""
    random_docs = st.builds(render, values, st.sampled_from([3, 200, 50_000]), st.sampled_from([5, 5000]))
    return mutations(real) | random_docs | st.binary(max_size=300) | st.sampled_from(HOSTILE)


# ----------------------------------------------------------------- .vpk


@pytest.fixture(scope="module")
def real_vpk(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    members = [hostile.directory("usr"), hostile.file("usr/a", b"hello\n"), hostile.symlink("usr/b", "a")]
    path = hostile.hostile_package(tmp_path_factory.mktemp("vpk") / "real.vpk", members)
    return path.read_bytes()


def _read_all(path: Path) -> None:
    read_header(path)
    with open_package(path) as r:
        r.check_signature()
    verify_package(path)


@FUZZ
@given(data=st.data())
def test_vpk_reader(tmp_path: Path, real_vpk: bytes, data: st.DataObject) -> None:
    blob = data.draw(st.binary(max_size=2000) | _mutated_bytes(real_vpk))
    path = tmp_path / "f.vpk"
    path.write_bytes(blob)
    within_contract(lambda: _read_all(path))


@st.composite
def _mutated_bytes(draw: st.DrawFn, blob: bytes) -> bytes:
    at = draw(st.integers(0, len(blob) - 1))
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
    if kind == "flip":
        return blob[:at] + bytes([blob[at] ^ draw(st.integers(1, 255))]) + blob[at + 1:]
    if kind == "truncate":
        return blob[:at]
    chunk = draw(st.binary(min_size=1, max_size=64))
    return blob[:at] + chunk + blob[at + (len(chunk) if kind == "overwrite" else 0):]


@st.composite
def _tar_pieces(draw: st.DrawFn) -> bytes:
    """A tar stream made of real member headers (some mutated), random blocks and end blocks."""
    blocks = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["member", "mutated", "random", "zeros", "pax"]))
        member = hostile.raw_member(_tarinfo(draw(st.sampled_from(["usr", "usr/a", "usr/b", "x" * 120]))), b"hello\n")
        if kind == "member":
            blocks.append(member)
        elif kind == "mutated":
            at = draw(st.integers(0, 511))
            blocks.append(member[:at] + draw(st.binary(min_size=1, max_size=16)) + member[at + 16:])
        elif kind == "random":
            blocks.append(draw(st.binary(min_size=512, max_size=512)))
        elif kind == "zeros":
            blocks.append(b"\0" * 512 * draw(st.integers(1, 30)))
        else:
            records = draw(st.dictionaries(st.sampled_from(["path", "linkpath", "size", "uid", "mtime", "comment",
                                                            "GNU.sparse.map", "GNU.sparse.size", "hdrcharset"]),
                                           st.text(max_size=20) | st.sampled_from(["9" * 30, "-1", "1e9"]),
                                           max_size=3))
            blocks.append(hostile.raw_member(_tarinfo("usr/a", pax_headers=records), b"hello\n"))
    return b"".join(blocks)


def _tarinfo(name: str, **attrs: Any) -> Any:
    import tarfile
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.mode = hostile.EPOCH, 0o644
    for k, v in attrs.items():
        setattr(ti, k, v)
    return ti


@FUZZ
@given(tar=_tar_pieces(), split=st.booleans())
def test_vpk_signed_random_payloads(tmp_path: Path, tar: bytes, split: bool) -> None:
    """Payloads that pass every digest (the attacker signs them) exercise the tar and zstd checks."""
    entries = (Entry(path="usr/a", type="file", mode=0o644, size=6,
                     sha256="5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),)
    half = len(tar) // 2
    payload = (hostile.compress(tar[:half]) + hostile.compress(tar[half:])) if split else hostile.compress(tar)
    path = hostile.write_vpk(tmp_path / "s.vpk", entries=entries, payload=payload)
    within_contract(lambda: _read_all(path))


REAL_MANIFEST = json.loads(Manifest(entries=(Entry(path="usr/a", type="file", mode=0o644, size=1,
                                                                   sha256="0" * 64),),
                                            payload_sha256="0" * 64, payload_size=0).to_bytes())
REAL_METADATA = hostile.metadata().to_dict()


@FUZZ
@given(manifest=documents(REAL_MANIFEST))
def test_vpk_manifest_structures(tmp_path: Path, manifest: bytes) -> None:
    if len(manifest) > 64 << 20:
        return
    path = hostile.write_raw_vpk(tmp_path / "m.vpk", metadata_bytes=hostile.metadata().to_toml(),
                                 manifest_bytes=manifest)
    within_contract(lambda: _read_all(path))


@FUZZ
@example(meta=b"[package]\nname = " + b"9" * 5000 + b"\n")
@example(meta=b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n")
@given(meta=mutations(REAL_METADATA) | st.builds(render, values, st.just(3), st.just(5)))
def test_vpk_metadata_structures(tmp_path: Path, meta: bytes) -> None:
    """Metadata is TOML: the mutated structure is written as TOML when it can be, else as raw text."""
    import tomli_w
    try:
        text = tomli_w.dumps(json.loads(meta)).encode()
    except (ValueError, TypeError, AttributeError, RecursionError):
        text = meta
    if len(text) > 1 << 20:
        return
    path = hostile.write_raw_vpk(tmp_path / "t.vpk", metadata_bytes=text,
                                 manifest_bytes=json.dumps(REAL_MANIFEST).encode())
    within_contract(lambda: _read_all(path))


# ----------------------------------------------------------------- index

REAL_INDEX = {"format": 1, "arch": "x86_64", "packages": [{
    "name": "hello", "version": "1.0.0", "arch": "x86_64", "type": "application", "description": "d",
    "license": "MIT", "dependencies": {"libc6": "2.36"}, "provides": ["greeter"], "conflicts": [],
    "features": {}, "capabilities": {}, "driver": {}, "size": 10, "installed_size": 20, "sha256": "0" * 64,
    "path": "packages/hello/hello-1.0.0-x86_64.vpk", "signer": "ab" * 32}]}


@FUZZ
@given(doc=documents(REAL_INDEX), compressed=st.booleans())
def test_index_reader(doc: bytes, compressed: bool) -> None:
    data = zstandard.ZstdCompressor().compress(doc) if compressed else doc
    within_contract(lambda: parse_index(data, "index/x86_64.json.zst"))


# ----------------------------------------------------------------- lock


def _real(path: str) -> Any:
    return json.loads((REPO / path).read_bytes())


@FUZZ
@given(doc=documents(_real("profiles/minimal.lock")))
def test_lock_reader(tmp_path: Path, doc: bytes) -> None:
    path = tmp_path / "profile.lock"
    path.write_bytes(doc)
    within_contract(lambda: read_lock(path))


# ----------------------------------------------------------------- root database

REAL_DB = {"format": 1, "transaction": 1, "packages": {"hello": {
    "version": "1.0.0", "arch": "x86_64", "sha256": "0" * 64, "signer": "ab" * 32, "reason": "explicit",
    "files": {"usr/bin/hello": {"type": "file", "mode": "0755", "sha256": "0" * 64, "role": "binary"}}}}}


@FUZZ
@example(doc=b"[" * 5000, history=b"[]")
@given(doc=documents(REAL_DB), history=documents([{"id": 1, "action": "install", "packages": ["hello"]}]))
def test_root_database_reader(tmp_path: Path, doc: bytes, history: bytes) -> None:
    root = tmp_path / "root"
    state = root / "var/lib/vpk"
    state.mkdir(parents=True, exist_ok=True)
    (state / "db.json").write_bytes(doc)
    (state / "history.json").write_bytes(history)
    within_contract(lambda: db.load(root))


# ----------------------------------------------------------------- profile


def _real_profile() -> Any:
    import yaml
    return yaml.safe_load((REPO / "profiles/minimal.yaml").read_text())


ALIAS_BOMB = (b"a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
              b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n")


@FUZZ
@example(doc=b"a: !unknown 1\n")
@given(doc=documents(_real_profile()) | st.sampled_from([
    ALIAS_BOMB, b"name: x\n" + b"- " * 3000 + b"1\n", b"!!python/object:os.system 'id'\n", b"--- 1\n--- 2\n"]))
def test_profile_loader(tmp_path: Path, doc: bytes) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(doc)
    within_contract(lambda: load_profile(path))


@pytest.mark.parametrize("doc", [b"[" * 5000 + b"]" * 5000, b"name: " + b"9" * 5000 + b"\n"], ids=["deep", "huge"])
def test_profile_loader_deep_or_huge(tmp_path: Path, doc: bytes) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(doc)
    within_contract(lambda: load_profile(path), memory=False)


def test_contract_helper_can_fail() -> None:
    """The helper used above does fail on a foreign exception and on memory over the budget."""
    def boom() -> None:
        raise RecursionError

    with pytest.raises(RecursionError):
        within_contract(boom)
    with pytest.raises(AssertionError, match="peak"):
        within_contract(lambda: io.BytesIO(bytes(MEMORY + 1)).getvalue())
