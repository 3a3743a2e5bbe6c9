"""Releasing update bundles to channels (composer/update/release.py) on the real signed test repository:
the client reads the channel back through the pinned root and assembles the images; shared chunks are stored
once; a non-newer generation, a tampered bundle and a changed generation are refused; rollback-channel; a
release killed from outside (SIGKILL, another process) leaves the old channel served."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from composer.errors import UserError, VerificationError
from composer.repo.client import RepositoryClient
from composer.repo.statedb import remove_state
from composer.repo.store import RepoStore
from composer.update.channel import Bundle, BundleFile, Channel, channel_target_path
from composer.update.release import (
    channels_of,
    current_channel,
    release,
    release_bundle,
    rollback_channel,
    write_bundle,
)
from composer.update.remote import fetch_image
from tests.repo_fixtures import Repo, flip_byte

ROOT = Path(__file__).resolve().parents[2]
COMMIT1 = "1" * 40
COMMIT2 = "2" * 40
PATH = channel_target_path("device", "x86_64", "stable")


def make_bundle(directory: Path, generation: int, *, verity: bool = True, profile: str = "device",
                name: str = "") -> Path:
    """A bundle of small fake files: generation N's root differs from generation 1's in one small place, so
    most chunks are shared; the UKIs differ per generation only in a few bytes."""
    rnd = random.Random(5)
    root = bytearray(rnd.randbytes(1 << 20) + bytes(256 << 10))
    root[300_000:300_020] = f"hostname=gen{generation:08d}".encode()[:20].ljust(20, b"!")
    verity_img = hashlib.sha256(bytes(root)).digest() * 512
    uki = rnd.randbytes(96 << 10) + f"cmdline g{generation}".encode()
    files = [("root.img", bytes(root)), ("uki-a.efi", uki + b"a"), ("uki-b.efi", uki + b"b")]
    if verity:
        files.append(("verity.img", verity_img))
    roles = {"root.img": "root", "uki-a.efi": "uki-a", "uki-b.efi": "uki-b", "verity.img": "verity"}
    order = ("root", "verity", "uki-a", "uki-b")
    entries = sorted((BundleFile(role=roles[n], path=n, sha256=hashlib.sha256(d).hexdigest(), size=len(d))
                      for n, d in files), key=lambda f: order.index(f.role))
    bundle = Bundle(profile=profile, arch="x86_64", output="disk", slot_size=2 << 20,
                    roothash=hashlib.sha256(verity_img).hexdigest() if verity else None, files=tuple(entries))
    out = directory / (name or f"g{generation}.bundle")
    out.mkdir(parents=True)
    write_bundle(out, bundle, files)
    return out


def served_channel(client: RepositoryClient) -> Channel:
    client.refresh()
    return Channel.from_bytes(client.download(PATH).read_bytes(), PATH)


def timestamp_version(repo: Repo) -> int:
    import json
    return int(json.loads(repo.meta("timestamp.json").read_bytes())["signed"]["version"])


def test_a_release_is_read_back_through_the_pinned_root_and_assembled(repo: Repo, tmp_path: Path) -> None:
    g1 = make_bundle(tmp_path, 1)
    before = timestamp_version(repo)
    first = release(repo.store, g1, "stable", 1, COMMIT1)
    assert timestamp_version(repo) == before + 1          # one publish, not one per image
    assert first.new_bytes > 0 and first.total_bytes == sum(i.size for i in first.images)
    doc = served_channel(repo.client())
    assert doc == first.channel and doc.generation == 1 and doc.commit == COMMIT1
    assert [h.action for h in doc.history] == ["release"]
    client = repo.client()
    client.refresh()
    root = doc.image("root")
    assert root is not None
    report = fetch_image(client, root.image, [], tmp_path / "slot-a")
    assert (tmp_path / "slot-a").read_bytes() == (g1 / "root.img").read_bytes()
    assert report.size == root.size and hashlib.sha256((tmp_path / "slot-a").read_bytes()).hexdigest() == root.sha256

    g2 = make_bundle(tmp_path, 2)
    second = release(repo.store, g2, "stable", 2, COMMIT2)
    assert second.previous == first.channel
    assert second.new_bytes < first.new_bytes / 4, (second.new_bytes, first.new_bytes)   # shared chunks: once
    doc2 = served_channel(repo.client())
    assert doc2.generation == 2 and [h.generation for h in doc2.history] == [1, 2]
    root2 = doc2.image("root")
    assert root2 is not None
    client.refresh()
    seeded = fetch_image(client, root2.image, [tmp_path / "slot-a"], tmp_path / "slot-b")
    assert (tmp_path / "slot-b").read_bytes() == (g2 / "root.img").read_bytes()
    assert seeded.fetched_bytes < root2.size / 4                # the device downloads the change only
    assert channels_of(repo.store, "device") == [doc2]


def test_a_generation_not_newer_is_refused_and_a_rerun_completes(repo: Repo, tmp_path: Path) -> None:
    g1, g2 = make_bundle(tmp_path, 1), make_bundle(tmp_path, 2)
    release_bundle(repo.store, g2, "stable", 2, None)
    with pytest.raises(UserError, match="is at generation 2; generation 1 is not newer") as err:
        release_bundle(repo.store, g1, "stable", 1, None)
    assert "rollback-channel" in err.value.hint
    again = release(repo.store, g2, "stable", 2, None)         # the same release again: nothing new
    assert again.republished and again.new_bytes == 0 and len(again.channel.history) == 1
    with pytest.raises(UserError, match="generation 2 of device .x86_64. was already published with another"):
        release_bundle(repo.store, g1, "beta", 2, None)        # another channel, other bytes for generation 2
    assert release_bundle(repo.store, g2, "beta", 2, None).generation == 2   # the same bytes on another channel


def test_a_tampered_bundle_publishes_nothing(repo: Repo, tmp_path: Path) -> None:
    g1 = make_bundle(tmp_path, 1)
    flip_byte(g1 / "uki-b.efi", 10)
    before = timestamp_version(repo)
    with pytest.raises(VerificationError, match=r"bundle.json: \$\.files\.uki-b: .*uki-b.efi does not have the sha256"):
        release_bundle(repo.store, g1, "stable", 1, None)
    (g1 / "uki-b.efi").write_bytes(b"short")
    with pytest.raises(VerificationError, match="has 5 bytes, the bundle says"):
        release_bundle(repo.store, g1, "stable", 1, None)
    with pytest.raises(UserError, match="no bundle.json: not an update bundle"):
        release_bundle(repo.store, tmp_path, "stable", 1, None)
    with pytest.raises(UserError, match="channel 'Stable' is not valid"):
        release_bundle(repo.store, g1, "Stable", 1, None)
    assert timestamp_version(repo) == before and current_channel(repo.store, "device", "x86_64", "stable") is None


def test_rollback_channel_points_back_with_a_new_document(repo: Repo, tmp_path: Path) -> None:
    for n in (1, 2, 3):
        release_bundle(repo.store, make_bundle(tmp_path, n, verity=False), "stable", n, f"{n}" * 40)
    back = rollback_channel(repo.store, "device", "x86_64", "stable").channel       # default: the one below
    assert back.generation == 2 and back.commit == "2" * 40
    assert [(h.generation, h.action) for h in back.history] == [(1, "release"), (2, "release"), (3, "release"),
                                                                (2, "rollback")]
    served = served_channel(repo.client())
    assert served == back and served.image("root").image == "device.x86_64.g2.root"  # type: ignore[union-attr]
    assert rollback_channel(repo.store, "device", "x86_64", "stable", 1).channel.generation == 1
    with pytest.raises(UserError, match="cannot move to generation 7: released generations: 1, 2, 3"):
        rollback_channel(repo.store, "device", "x86_64", "stable", 7)
    with pytest.raises(UserError, match="already carries generation 1"):
        rollback_channel(repo.store, "device", "x86_64", "stable", 1)
    with pytest.raises(UserError, match="has no channel 'beta'"):
        rollback_channel(repo.store, "device", "x86_64", "beta")
    forward = release_bundle(repo.store, make_bundle(tmp_path / "again", 3, verity=False), "stable", 3, "3" * 40)
    assert forward.generation == 3 and forward.history[-1].action == "release"


KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from composer.repo.publish import LocalDirectory
    from composer.repo.store import RepoStore
    from composer.update.release import release_bundle

    repo, bundle, marker, stop = sys.argv[1:5]

    class Stalling:
        '''Writes like the repository's own publisher, and stops (until killed) before the file ``stop``.'''
        def __init__(self, root):
            self.inner = LocalDirectory(root=root)
        def _maybe_stop(self, name):
            if name == stop or name.endswith("." + stop):
                Path(marker).write_text("stopped before " + name)
                time.sleep(600)
        def put_metadata(self, name, data):
            self._maybe_stop(name)
            self.inner.put_metadata(name, data)
        def put_target(self, name, data):
            self._maybe_stop(name.rpartition("/")[2])
            self.inner.put_target(name, data)
        def put_target_file(self, name, source):
            self.inner.put_target_file(name, source)

    release_bundle(RepoStore(Path(repo), publisher=Stalling(Path(repo))), Path(bundle), "stable", 2, None)
""")


@pytest.mark.parametrize("stop", ["timestamp.json", "snapshot.json", "device.x86_64.stable.channel.json"])
def test_a_killed_release_leaves_the_old_channel_served(repo: Repo, tmp_path: Path, stop: str) -> None:
    release_bundle(repo.store, make_bundle(tmp_path, 1), "stable", 1, None)
    g2 = make_bundle(tmp_path, 2)
    marker = tmp_path / "stopped"
    script = tmp_path / "release.py"
    script.write_text(KILLED)
    snapshot_now = RepoStore(repo.dir).current_version("snapshot")
    stop_name = f"{snapshot_now + 1}.snapshot.json" if stop == "snapshot.json" else stop
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(repo.dir), str(g2), str(marker), stop_name], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the release never reached its stop"
            time.sleep(0.05)
    finally:
        proc.kill()       # SIGKILL from outside, mid-release
        proc.wait()
    assert served_channel(repo.client()).generation == 1            # clients still see the old channel
    done = release(repo.store, g2, "stable", 2, None)                  # the next writer completes or redoes it
    assert served_channel(repo.client()).generation == 2
    assert [h.generation for h in done.channel.history] == [1, 2]


def test_a_lost_state_file_keeps_the_channel_served(repo: Repo, tmp_path: Path) -> None:
    """The state is derived: rebuilt under the lock, it still lists the images and channels the index role signed."""
    first = release(repo.store, make_bundle(tmp_path, 1), "stable", 1, None)
    remove_state(repo.dir)
    repo.publish()
    assert served_channel(repo.client()) == first.channel
    assert current_channel(repo.store, "device", "x86_64", "stable") == first.channel
    second = release_bundle(repo.store, make_bundle(tmp_path, 2), "stable", 2, None)
    assert served_channel(repo.client()) == second
