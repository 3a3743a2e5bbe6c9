"""Release an update bundle to a channel of a repository, and move a channel back (the I/O edge of channel.py).

``release`` verifies a bundle (composer.update.channel.Bundle: names, sizes, the sha256 of every file), then,
under the repository's lock: chunks each file into the chunk store as image ``P.A.gN.ROLE`` (a chunk another
generation already stored is not written again), writes the new channel document as a stored target, lists
them all in the state (state.db) and publishes once. Crash safety comes from the order: every target is
written (and durable) before the state lists it, and the state before the publish that signs it, whose
timestamp.json is written last. A kill at any point leaves the old timestamp, so clients keep seeing the old
channel document; the next release (or ``repo publish``) under the lock completes or replaces the interrupted one.

The older documents of a channel stay in the store (targets are content-addressed and never removed), so
``rollback_channel`` finds the document a generation was released with and points the channel at it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError, VerificationError
from composer.fsutil import atomic_write, sha256_file
from composer.oserrors import fault
from composer.repo.guard import locked
from composer.repo.publish import stored_target
from composer.repo.publishing import publish_unlocked
from composer.repo.store import RepoStore
from composer.update.channel import (
    BUNDLE_JSON,
    CHANNEL_SUFFIX,
    MAX_BUNDLE_BYTES,
    MAX_CHANNEL_BYTES,
    MAX_GENERATION,
    Bundle,
    Channel,
    channel_from_bundle,
    channel_target_path,
    check_name,
    image_name,
    rolled_back,
)
from composer.update.index import ChunkIndex
from composer.update.publish import image_target_path, list_target, put_image

__all__ = ["Release", "ReleasedImage", "channels_of", "current_channel", "read_bundle", "release", "release_bundle",
           "rollback_channel"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleasedImage:
    role: str
    image: str
    size: int
    chunks: int
    new_chunks: int
    new_bytes: int        # compressed bytes of the chunks new to the store


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    channel: Channel
    previous: Channel | None
    images: tuple[ReleasedImage, ...]
    republished: bool = False     # the channel already pointed at exactly this (a re-run completes it)

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.images)

    @property
    def new_bytes(self) -> int:
        return sum(i.new_bytes for i in self.images)


# ----------------------------------------------------------------- the bundle (verified before the lock)

def read_bundle(bundle_dir: Path) -> Bundle:
    """The bundle in ``bundle_dir``, its files checked: each a regular file of the listed size and sha256."""
    path = bundle_dir / BUNDLE_JSON
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BUNDLE_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{bundle_dir}: no {BUNDLE_JSON}: not an update bundle",
                        hint="an A/B disk output (options: {slots: ab}) writes NAME.bundle/ beside the disk "
                             "image; build the profile, then release that directory") from None
    except OSError as exc:
        raise fault(exc, f"reading {path}") from None
    bundle = Bundle.from_bytes(data, str(path))
    for f in bundle.files:
        verify_file(bundle_dir / f.path, f.size, f.sha256, f"{path}: $.files.{f.role}")
    return bundle


def verify_file(path: Path, size: int, sha256: str, where: str) -> None:
    try:
        if path.is_symlink() or not path.is_file():
            raise VerificationError(f"{where}: {path} is not a regular file",
                                    hint="the bundle is incomplete: build it again")
        actual = path.stat().st_size
        if actual != size:
            raise VerificationError(f"{where}: {path} has {actual} bytes, the bundle says {size}",
                                    hint="the bundle's files changed after the build: build it again")
        if sha256_file(path) != sha256:
            raise VerificationError(f"{where}: {path} does not have the sha256 the bundle lists",
                                    hint="the bundle's files changed after the build: build it again")
    except OSError as exc:
        raise fault(exc, f"reading {path}") from None


# ----------------------------------------------------------------- the channel documents of a repository

def current_channel(store: RepoStore, profile: str, arch: str, channel: str) -> Channel | None:
    """The channel document the repository lists (its state), read back from its stored target; None if none."""
    path = channel_target_path(profile, arch, channel)
    listed = store.read_state().get("images", {}).get(path)
    if not isinstance(listed, dict):
        return None
    return _stored_channel(store, path, str(listed.get("sha256", "")))


def channels_of(store: RepoStore, profile: str) -> list[Channel]:
    """Every channel document of ``profile`` the repository lists, by target path."""
    prefix = f"index/{profile}."
    out = []
    for path, listed in sorted(store.read_state().get("images", {}).items()):
        if path.startswith(prefix) and path.endswith(CHANNEL_SUFFIX) and isinstance(listed, dict):
            found = _stored_channel(store, path, str(listed.get("sha256", "")))
            if found.profile == profile:
                out.append(found)
    return out


def _stored_channel(store: RepoStore, path: str, sha256: str) -> Channel:
    stored = store.targets_dir / stored_target(path, sha256)
    try:
        with stored.open("rb") as stream:
            data = stream.read(MAX_CHANNEL_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{store.dir}: the channel document {path} is listed but its stored target {stored} is "
                        f"unreadable ({exc.strerror or exc})",
                        hint="restore targets/ from a backup, or release the channel again") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise VerificationError(f"{stored}: does not have the sha256 its name and the state (state.db) give",
                                hint="restore targets/ from a backup, or release the channel again")
    return Channel.from_bytes(data, str(stored))


def _released_documents(store: RepoStore, profile: str, arch: str, channel: str) -> dict[int, Channel]:
    """generation -> the document it was (last) released to ``channel`` with, from the stored targets."""
    base = channel_target_path(profile, arch, channel).rpartition("/")[2]
    found: dict[int, Channel] = {}
    for stored in sorted((store.targets_dir / "index").glob(f"*.{base}")):
        digest = stored.name.split(".", 1)[0]
        try:
            doc = _stored_channel(store, f"index/{base}", digest)
        except (UserError, VerificationError):
            continue       # not one of ours (or damaged): it cannot be a rollback target
        last = doc.history[-1]
        if last.action == "release" and (doc.generation not in found
                                         or len(doc.history) > len(found[doc.generation].history)):
            found[doc.generation] = doc
    return found


# ----------------------------------------------------------------- release / rollback

def release_bundle(store: RepoStore, bundle_dir: Path, channel: str, generation: int,
                   commit: str | None) -> Channel:
    """Publish the bundle in ``bundle_dir`` as ``generation`` of ``channel``; the new channel document."""
    return release(store, bundle_dir, channel, generation, commit).channel


def release(store: RepoStore, bundle_dir: Path, channel: str, generation: int, commit: str | None, *,
            profile: str | None = None, arch: str | None = None) -> Release:
    """:func:`release_bundle` with the report (new chunk bytes against the total); ``profile``/``arch``: what
    the bundle must be of (the command line's)."""
    try:
        check_name(channel, "channel")
    except ValueError as exc:
        raise UserError(str(exc), hint="e.g. --channel stable") from None
    if not 1 <= generation <= MAX_GENERATION:
        raise UserError(f"generation {generation} is not between 1 and {MAX_GENERATION}", hint="--generation N")
    bundle = read_bundle(bundle_dir)       # hashing big files: before taking the lock
    for want, got, what in ((profile, bundle.profile, "profile"), (arch, bundle.arch, "architecture")):
        if want is not None and want != got:
            raise UserError(f"{bundle_dir / BUNDLE_JSON}: a bundle of {what} '{got}', not '{want}'",
                            hint="release the bundle the profile's build wrote (images/NAME/ARCH/OUTPUT.bundle)")
    return _release_locked(store, bundle_dir, bundle, channel, generation, commit)


@locked
def _release_locked(store: RepoStore, bundle_dir: Path, bundle: Bundle, channel: str, generation: int,
                    commit: str | None) -> Release:
    previous = current_channel(store, bundle.profile, bundle.arch, channel)
    doc = channel_from_bundle(bundle, channel=channel, generation=generation, commit=commit, previous=previous)
    rerun = previous is not None and (previous.generation, previous.commit, previous.images) == \
        (generation, commit, doc.images)
    if previous is not None and generation <= previous.generation and not rerun:
        back = (f", or move the channel back to a released one with: vcomp rollback-channel {bundle.profile} "
                f"--channel {channel} --arch {bundle.arch} --to {generation}") if generation < previous.generation \
            else " (this one was built from other files or another commit)"
        raise UserError(f"channel '{channel}' of {bundle.profile} ({bundle.arch}) is at generation "
                        f"{previous.generation}; generation {generation} is not newer",
                        hint=f"release it as a newer generation (--generation {previous.generation + 1}){back}")
    state = store.read_state()
    listed = state.get("images", {})
    for f in bundle.files:     # a generation's images never change once published
        known = listed.get(image_target_path(image_name(bundle.profile, bundle.arch, generation, f.role)))
        if isinstance(known, dict) and not rerun:
            _refuse_other_bytes(store, bundle, generation, f.role, f.sha256, f.size, str(known.get("sha256", "")))
    images = []
    for f in bundle.files:
        name = image_name(bundle.profile, bundle.arch, generation, f.role)
        published = put_image(store, bundle_dir / f.path, name)
        index = published.stored.index
        if (index.sha256, index.size) != (f.sha256, f.size):
            raise VerificationError(f"{bundle_dir / f.path}: changed while it was released (sha256 or size differ "
                                    "from the bundle's)", hint="nothing was published; release it again")
        list_target(state, published.path, published.sha256, published.length)
        images.append(ReleasedImage(role=f.role, image=name, size=f.size, chunks=len(index.chunks),
                                    new_chunks=published.stored.written, new_bytes=published.stored.written_bytes))
    final = previous if rerun and previous is not None else doc
    _put_channel(store, state, final)
    store.write_state(state)
    publish_unlocked(store)
    return Release(channel=final, previous=previous, images=tuple(images), republished=rerun)


def _refuse_other_bytes(store: RepoStore, bundle: Bundle, generation: int, role: str, sha256: str, size: int,
                        listed_sha: str) -> None:
    path = image_target_path(image_name(bundle.profile, bundle.arch, generation, role))
    stored = store.targets_dir / stored_target(path, listed_sha)
    try:
        index = ChunkIndex.from_bytes(stored.read_bytes(), str(stored))
    except OSError:
        return      # the old index is gone: publishing the new one replaces the listing
    if (index.sha256, index.size) != (sha256, size):
        raise UserError(f"{store.dir}: generation {generation} of {bundle.profile} ({bundle.arch}) was already "
                        f"published with another {role} image ({path})",
                        hint="a generation's images never change: release this build as a new generation "
                             "(--generation N, higher than the published ones)")


def _put_channel(store: RepoStore, state: dict[str, Any], doc: Channel) -> None:
    data = doc.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    store.publisher.put_target(stored_target(doc.target_path, sha), data)
    list_target(state, doc.target_path, sha, len(data))


@locked
def rollback_channel(store: RepoStore, profile: str, arch: str, channel: str, to: int | None = None) -> Release:
    """Point ``channel`` at an earlier released generation (``to``; default: the newest one below the current):
    a new document version whose generation is the older one, history action 'rollback'."""
    current = current_channel(store, profile, arch, channel)
    if current is None:
        raise UserError(f"{store.dir}: {profile} ({arch}) has no channel '{channel}'",
                        hint=f"release a generation first: vcomp release {profile} --channel {channel}")
    released = _released_documents(store, profile, arch, channel)
    older = sorted(g for g in released if g < current.generation)
    target = to if to is not None else (older[-1] if older else None)
    if target is None or target not in released:
        shown = ", ".join(str(g) for g in sorted(released)) or "none"
        raise UserError(f"channel '{channel}' of {profile} ({arch}) cannot move to generation "
                        f"{target if target is not None else '(none older)'}: released generations: {shown}",
                        hint="name one of them with --to N")
    if target == current.generation:
        raise UserError(f"channel '{channel}' of {profile} ({arch}) already carries generation {target}",
                        hint="name another released generation with --to N")
    state = store.read_state()
    listed = state.get("images", {})
    for image in released[target].images:
        if image_target_path(image.image) not in listed:
            raise UserError(f"{store.dir}: generation {target}'s {image.role} image ({image.image}) is no longer "
                            "listed", hint=f"release generation {target} again (vcomp release --generation ...)")
    doc = rolled_back(current, released[target])
    _put_channel(store, state, doc)
    store.write_state(state)
    publish_unlocked(store)
    return Release(channel=doc, previous=current, images=())


def write_bundle(directory: Path, bundle: Bundle, files: Sequence[tuple[str, bytes]]) -> None:
    """Write a bundle directory (``files``: (path, bytes)): for tests and tools that make bundles by hand."""
    for name, data in files:
        atomic_write(directory / name, data, durable=False)
    atomic_write(directory / BUNDLE_JSON, bundle.to_bytes(), durable=False)
