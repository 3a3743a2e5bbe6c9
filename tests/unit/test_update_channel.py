"""The update bundle and channel documents (composer/update/channel.py): canonical bytes, hostile input refused
naming the JSON path, every problem at once, the target path helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from composer.errors import VerificationError
from composer.update.channel import (
    MAX_HISTORY,
    Bundle,
    Channel,
    channel_from_bundle,
    channel_target_path,
    image_name,
    parse_commit,
    rolled_back,
)

HEX = "ab" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def bundle_doc(verity: bool = True) -> dict[str, Any]:
    files = {"root": {"path": "root.img", "sha256": HEX, "size": 4096},
             "uki-a": {"path": "uki-a.efi", "sha256": "cd" * 32, "size": 100},
             "uki-b": {"path": "uki-b.efi", "sha256": "ef" * 32, "size": 100}}
    if verity:
        files["verity"] = {"path": "verity.img", "sha256": "01" * 32, "size": 512}
    return {"format": "vcomp-update-bundle", "version": 1, "profile": "device", "arch": "x86_64",
            "output": "disk", "slot-size": 8192, "roothash": "9f" * 32 if verity else None, "files": files}


def bundle(verity: bool = True) -> Bundle:
    return Bundle.from_dict(bundle_doc(verity), "bundle.json")


def channel(generation: int = 1, previous: Channel | None = None) -> Channel:
    return channel_from_bundle(bundle(), channel="stable", generation=generation, commit=COMMIT, previous=previous)


def test_the_bundle_round_trips_as_canonical_json() -> None:
    b = bundle()
    data = b.to_bytes()
    assert data == json.dumps(bundle_doc(), sort_keys=True, separators=(",", ":")).encode()
    assert Bundle.from_bytes(data, "x") == b
    assert [f.role for f in b.files] == ["root", "verity", "uki-a", "uki-b"]
    assert [f.role for f in bundle(verity=False).files] == ["root", "uki-a", "uki-b"]


def test_the_channel_round_trips_and_names_each_image_by_generation() -> None:
    c = channel(3)
    assert Channel.from_bytes(c.to_bytes(), "x") == c
    assert c.to_bytes() == Channel.from_bytes(c.to_bytes(), "x").to_bytes()
    assert c.target_path == "index/device.x86_64.stable.channel.json"
    assert [i.image for i in c.images] == [f"device.x86_64.g3.{r}" for r in ("root", "verity", "uki-a", "uki-b")]
    assert c.image("root") is not None and c.image("root").sha256 == HEX  # type: ignore[union-attr]
    assert [h.to_dict() for h in c.history] == [{"generation": 3, "commit": COMMIT, "action": "release"}]


def test_history_is_appended_and_bounded() -> None:
    c = channel(1)
    for n in range(2, MAX_HISTORY + 10):
        c = channel(n, previous=c)
    assert len(c.history) == MAX_HISTORY
    assert c.history[0].generation == 10 and c.history[-1].generation == MAX_HISTORY + 9
    assert Channel.from_bytes(c.to_bytes(), "x") == c


def test_a_rollback_points_at_the_old_generation_with_a_new_history_entry() -> None:
    g1 = channel(1)
    g2 = channel(2, previous=g1)
    back = rolled_back(g2, g1)
    assert back.generation == 1 and back.images == g1.images
    assert [(h.generation, h.action) for h in back.history] == [(1, "release"), (2, "release"), (1, "rollback")]
    assert Channel.from_bytes(back.to_bytes(), "x") == back


def test_target_paths_refuse_bad_names() -> None:
    assert image_name("p", "aarch64", 7, "uki-b") == "p.aarch64.g7.uki-b"
    for bad in ("", "Stable", "../x", "a.b", "a/b", "-x", "x" * 49):
        with pytest.raises(ValueError, match="channel"):
            channel_target_path("p", "x86_64", bad)
    assert parse_commit(None) is None and parse_commit(COMMIT) == COMMIT
    with pytest.raises(ValueError, match="commit"):
        parse_commit("HEAD")


def edit(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``doc`` with the value at ``a.b.c`` replaced (``...`` deletes it)."""
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(("path", "value", "message"), [
    ("format", "other", r"\$\.format: not 'vcomp-update-bundle'"),
    ("version", 2, r"\$\.version: 2; this vcomp reads version 1"),
    ("profile", "../etc", r"\$\.profile: '\.\./etc' is not a name"),
    ("slot-size", -1, r"\$\.slot-size: -1 is not a size"),
    ("slot-size", True, r"\$\.slot-size: True is not a size"),
    ("slot-size", 100, r"\$\.files\.root\.size: 4096 bytes do not fit the slot"),
    ("roothash", "XYZ", r"\$\.roothash: 'XYZ' is not null or a verity root hash"),
    ("roothash", None, r"\$\.files\.verity: present, but \$\.roothash is null"),
    ("files.root.path", "../root.img", r"\$\.files\.root\.path: '\.\./root\.img' is not a file name"),
    ("files.root.path", "a/b", r"\$\.files\.root\.path: 'a/b' is not a file name"),
    ("files.root.path", "bundle.json", r"\$\.files\.root\.path: 'bundle\.json' is the bundle's own"),
    ("files.uki-b.path", "uki-a.efi", r"\$\.files\.uki-b\.path: 'uki-a\.efi' is also another role's file"),
    ("files.root.sha256", "AB" * 32, r"\$\.files\.root\.sha256: .* is not a sha256 hex digest"),
    ("files.root.size", 1 << 50, r"\$\.files\.root\.size: \d+ is not a size"),
    ("files.uki-a", ..., r"\$\.files\.uki-a: missing"),
    ("files.boot", {}, r"\$\.files\.'boot': not a role"),
    ("files.root.mode", 1, r"\$\.files\.root\.'mode': not a field"),
    ("extra", 1, r"\$\.extra: not a field"),
    ("files", [], r"\$\.files: not an object"),
])
def test_a_hostile_bundle_is_refused_naming_the_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        Bundle.from_dict(edit(bundle_doc(), path, value), "b/bundle.json")


def channel_doc() -> dict[str, Any]:
    return channel(2, previous=channel(1)).to_dict()


@pytest.mark.parametrize(("path", "value", "message"), [
    ("format", "vcomp-update-bundle", r"\$\.format: not 'vcomp-channel'"),
    ("generation", 0, r"\$\.generation: 0 is not a generation"),
    ("generation", "2", r"\$\.generation: '2' is not a generation"),
    ("generation", 3, r"\$\.images\.root\.image: 'device\.x86_64\.g2\.root' is not generation 3's"),
    ("commit", "main", r"\$\.commit: 'main' is not null or a git commit id"),
    ("channel", "a.b", r"\$\.channel: 'a\.b' is not a name"),
    ("images.root.image", "other.g2.root", r"\$\.images\.root\.image: 'other\.g2\.root' is not generation 2's"),
    ("images.root.image", "../x", r"\$\.images\.root\.image: '\.\./x' is not an image name"),
    ("history", [], r"\$\.history: not a list of 1 to 100 entries"),
    ("history", [{"generation": 2, "commit": None, "action": "release"}] * 101, r"\$\.history: not a list of 1"),
    ("history", [{"generation": 2, "commit": COMMIT, "action": "delete"}], r"\$\.history\[0\]\.action: 'delete'"),
    ("history", [{"generation": 1, "commit": COMMIT, "action": "release"}], r"\$\.history\[0\]: the last entry is"),
    ("history", [{"generation": 2}], r"\$\.history\[0\]: not \{generation, commit, action\}"),
])
def test_a_hostile_channel_is_refused_naming_the_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        Channel.from_dict(edit(channel_doc(), path, value), "https://repo: index/x.channel.json")


def test_every_problem_is_reported_at_once() -> None:
    doc = edit(edit(edit(channel_doc(), "generation", -1), "commit", 5), "images.uki-a", ...)
    with pytest.raises(VerificationError) as err:
        Channel.from_dict(doc, "origin")
    text = str(err.value)
    for path in ("$.generation", "$.commit", "$.images.uki-a: missing"):
        assert path in text


@pytest.mark.parametrize("data", [b"", b"[", b"[]", b"null", b'{"format": "vcomp-channel"}', b"[" * 5000,
                                  b'{"a": NaN}', b"\xff\xfe", b" " * (300 << 10)])
def test_garbage_is_one_clear_error(data: bytes) -> None:
    with pytest.raises(VerificationError, match="origin"):
        Channel.from_bytes(data, "origin")
    with pytest.raises(VerificationError, match="origin"):
        Bundle.from_bytes(data, "origin")
