"""The two documents of an image release (pure): the update bundle a build writes, the channel a device follows.

    NAME.bundle/bundle.json   (written by an A/B disk output, read by ``vcomp release``)
      {"format": "vcomp-update-bundle", "version": 1, "profile": P, "arch": A, "output": NAME,
       "slot-size": BYTES, "roothash": HEX|null,
       "files": {"root": F, "verity": F (with verity only), "uki-a": F, "uki-b": F}}
      F = {"path": "root.img", "sha256": HEX, "size": N}      (path: one segment, relative to the bundle)

    target index/P.A.C.channel.json   (written by ``vcomp release``, read by ``vpk update`` on the device)
      {"format": "vcomp-channel", "version": 1, "channel": C, "profile": P, "arch": A, "generation": N,
       "commit": GITSHA|null, "slot-size": BYTES, "roothash": HEX|null,
       "images": {"root": I, "verity": I (with verity only), "uki-a": I, "uki-b": I},
       "history": [{"generation": n, "commit": ..., "action": "release"|"rollback"}, ...]}   (oldest first)
      I = {"image": "P.A.gN.ROLE", "sha256": HEX, "size": N}  (the chunk index target index/P.A.gN.ROLE.caidx.json)

Both are canonical JSON (sorted keys, no spaces) and both are checked once, here, as hostile input: a size
limit before parsing, then every field (names, hex digests, sizes, generations, the roles present, image
names matching the generation); every problem is reported at once, each naming its JSON path.
The contract with the device side is docs/updates/channels.md (and /work/brief/contract17.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from composer.errors import VerificationError
from composer.fsutil import canonical_json
from composer.limits import LimitExceeded, load_json

BUNDLE_FORMAT = "vcomp-update-bundle"
CHANNEL_FORMAT = "vcomp-channel"
VERSION = 1
BUNDLE_JSON = "bundle.json"
MAX_BUNDLE_BYTES = 64 << 10
MAX_CHANNEL_BYTES = 256 << 10
MAX_HISTORY = 100
MAX_GENERATION = 10**9
MAX_FILE_SIZE = 1 << 40                 # one slot image: 1 TiB
ROLES = ("root", "verity", "uki-a", "uki-b")       # the order images are published and listed in
REQUIRED_ROLES = ("root", "uki-a", "uki-b")        # verity: exactly when the bundle has a root hash
ACTIONS = ("release", "rollback")
CHANNEL_SUFFIX = ".channel.json"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")                 # profile, arch, channel
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")      # a bundle file's path
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ROOTHASH = re.compile(r"^[0-9a-f]{64}([0-9a-f]{64})?$")          # sha256 or sha512 verity root hash
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")            # git SHA-1 or SHA-256


# ----------------------------------------------------------------- names and target paths

def check_name(value: str, what: str) -> str:
    """``value`` if it is a valid profile, arch or channel name, else a ValueError naming ``what``."""
    if not _NAME.match(value):
        raise ValueError(f"{what} '{value}' is not valid: use 1-48 lower-case letters, digits, '_' and '-', "
                         "starting with a letter or digit")
    return value


def image_name(profile: str, arch: str, generation: int, role: str) -> str:
    """``P.A.gN.ROLE``: the name one bundle file is published under (composer.update.publish.add_image)."""
    return f"{profile}.{arch}.g{generation}.{role}"


def channel_target_path(profile: str, arch: str, channel: str) -> str:
    """``index/P.A.C.channel.json``: the channel document's TUF target (under the online index role)."""
    for value, what in ((profile, "profile"), (arch, "architecture"), (channel, "channel")):
        check_name(value, what)
    return f"index/{profile}.{arch}.{channel}{CHANNEL_SUFFIX}"


# ----------------------------------------------------------------- the bundle

@dataclass(frozen=True, slots=True, kw_only=True)
class BundleFile:
    role: str
    path: str        # one segment, relative to the bundle directory
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    profile: str
    arch: str
    output: str
    slot_size: int
    roothash: str | None
    files: tuple[BundleFile, ...]     # in ROLES order

    def file(self, role: str) -> BundleFile | None:
        return next((f for f in self.files if f.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        return {"format": BUNDLE_FORMAT, "version": VERSION, "profile": self.profile, "arch": self.arch,
                "output": self.output, "slot-size": self.slot_size, "roothash": self.roothash,
                "files": {f.role: f.to_dict() for f in self.files}}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> Bundle:
        return cls.from_dict(_load(data, origin, MAX_BUNDLE_BYTES, "bundle"), origin)

    @classmethod
    def from_dict(cls, doc: Any, origin: str) -> Bundle:
        r = _Reader(origin, "update bundle",
                    hint="the bundle is corrupt or was not written by an A/B disk output: build it again "
                         "(vcomp build PROFILE) and release the new NAME.bundle directory")
        r.header(doc, BUNDLE_FORMAT, {"format", "version", "profile", "arch", "output", "slot-size", "roothash",
                                      "files"})
        d = doc if isinstance(doc, dict) else {}
        profile = r.name(d, "profile")
        arch = r.name(d, "arch")
        output = r.text(d, "output", _SEGMENT)
        slot_size = r.size(d, "slot-size", minimum=1)
        roothash = r.optional(d, "roothash", _ROOTHASH)
        files = tuple(BundleFile(role=role, path=r.text(f, "path", _SEGMENT, at=f"$.files.{role}"),
                                 sha256=r.text(f, "sha256", _HEX64, at=f"$.files.{role}"),
                                 size=r.size(f, "size", at=f"$.files.{role}"))
                      for role, f in r.roles(d, "files", "path", "sha256", "size", verity=roothash is not None))
        paths = [f.path for f in files]
        for f in files:
            if paths.count(f.path) > 1:
                r.fail(f"$.files.{f.role}.path", f"'{f.path}' is also another role's file")
            if f.path == BUNDLE_JSON:
                r.fail(f"$.files.{f.role}.path", f"'{BUNDLE_JSON}' is the bundle's own description")
        root = next((f for f in files if f.role == "root"), None)
        if root is not None and slot_size and root.size > slot_size:
            r.fail("$.files.root.size", f"{root.size} bytes do not fit the slot ($.slot-size: {slot_size})")
        r.done()
        return cls(profile=profile, arch=arch, output=output, slot_size=slot_size, roothash=roothash, files=files)


# ----------------------------------------------------------------- the channel

@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelImage:
    role: str
    image: str       # P.A.gN.ROLE
    sha256: str      # of the whole file (the chunk index's sha256)
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    generation: int
    commit: str | None
    action: str      # release | rollback

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "commit": self.commit, "action": self.action}


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    channel: str
    profile: str
    arch: str
    generation: int
    commit: str | None
    slot_size: int
    roothash: str | None
    images: tuple[ChannelImage, ...]     # in ROLES order
    history: tuple[HistoryEntry, ...]    # oldest first, at most MAX_HISTORY; the last is this document's

    @property
    def target_path(self) -> str:
        return channel_target_path(self.profile, self.arch, self.channel)

    def image(self, role: str) -> ChannelImage | None:
        return next((i for i in self.images if i.role == role), None)

    def released(self) -> dict[int, HistoryEntry]:
        """generation -> its latest 'release' entry, for every generation the (bounded) history still lists."""
        return {h.generation: h for h in self.history if h.action == "release"}

    def to_dict(self) -> dict[str, Any]:
        return {"format": CHANNEL_FORMAT, "version": VERSION, "channel": self.channel, "profile": self.profile,
                "arch": self.arch, "generation": self.generation, "commit": self.commit,
                "slot-size": self.slot_size, "roothash": self.roothash,
                "images": {i.role: i.to_dict() for i in self.images},
                "history": [h.to_dict() for h in self.history]}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> Channel:
        return cls.from_dict(_load(data, origin, MAX_CHANNEL_BYTES, "channel document"), origin)

    @classmethod
    def from_dict(cls, doc: Any, origin: str) -> Channel:
        r = _Reader(origin, "channel document",
                    hint="the channel document is corrupt or hostile: fetch it again from the repository "
                         "through the pinned root (its hash is in the signed TUF targets)")
        r.header(doc, CHANNEL_FORMAT, {"format", "version", "channel", "profile", "arch", "generation", "commit",
                                       "slot-size", "roothash", "images", "history"})
        d = doc if isinstance(doc, dict) else {}
        channel, profile, arch = r.name(d, "channel"), r.name(d, "profile"), r.name(d, "arch")
        generation = r.generation(d, "generation")
        commit = r.optional(d, "commit", _COMMIT)
        slot_size = r.size(d, "slot-size", minimum=1)
        roothash = r.optional(d, "roothash", _ROOTHASH)
        images = tuple(ChannelImage(role=role, image=r.text(i, "image", _IMAGE, at=f"$.images.{role}"),
                                    sha256=r.text(i, "sha256", _HEX64, at=f"$.images.{role}"),
                                    size=r.size(i, "size", at=f"$.images.{role}"))
                       for role, i in r.roles(d, "images", "image", "sha256", "size", verity=roothash is not None))
        if profile and arch and generation:
            for i in images:
                want = image_name(profile, arch, generation, i.role)
                if i.image and i.image != want:
                    r.fail(f"$.images.{i.role}.image", f"'{i.image}' is not generation {generation}'s '{want}'")
        history = r.history(d)
        if history and generation and (history[-1].generation, history[-1].commit) != (generation, commit):
            r.fail(f"$.history[{len(history) - 1}]", "the last entry is not this document's generation and commit")
        r.done()
        return cls(channel=channel, profile=profile, arch=arch, generation=generation, commit=commit,
                   slot_size=slot_size, roothash=roothash, images=images, history=history)


def channel_from_bundle(bundle: Bundle, *, channel: str, generation: int, commit: str | None,
                        previous: Channel | None, action: str = "release") -> Channel:
    """The channel document pointing at ``bundle`` published as ``generation`` (history carried over, bounded)."""
    images = tuple(ChannelImage(role=f.role, image=image_name(bundle.profile, bundle.arch, generation, f.role),
                                sha256=f.sha256, size=f.size) for f in bundle.files)
    entry = HistoryEntry(generation=generation, commit=commit, action=action)
    history = (*(previous.history if previous else ()), entry)
    return Channel(channel=channel, profile=bundle.profile, arch=bundle.arch, generation=generation, commit=commit,
                   slot_size=bundle.slot_size, roothash=bundle.roothash, images=images,
                   history=history[-MAX_HISTORY:])


def rolled_back(current: Channel, target: Channel) -> Channel:
    """``current``'s next document, pointing at ``target``'s generation again (history action 'rollback')."""
    entry = HistoryEntry(generation=target.generation, commit=target.commit, action="rollback")
    return replace(target, channel=current.channel, history=(*current.history, entry)[-MAX_HISTORY:])


# ----------------------------------------------------------------- bounded reading, every error at once

_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_MISSING = object()


def _load(data: bytes, origin: str, limit: int, what: str) -> Any:
    if len(data) > limit:
        raise VerificationError(f"{origin}: {len(data)} bytes, over the {what} limit of {limit}",
                                hint=f"the {what} is corrupt or hostile")
    try:
        return load_json(data, origin)
    except (ValueError, LimitExceeded) as exc:
        raise VerificationError(f"{origin}: not a {what} (not JSON: {exc})",
                                hint=f"the {what} is corrupt or hostile") from None


class _Reader:
    """Reads fields of one document, noting every problem with its JSON path; :meth:`done` raises them."""

    def __init__(self, origin: str, what: str, *, hint: str) -> None:
        self.origin, self.what, self.hint = origin, what, hint
        self.problems: list[str] = []

    def fail(self, path: str, what: str) -> None:
        self.problems.append(f"{path}: {what}")

    def done(self) -> None:
        if self.problems:
            shown = self.problems[:20] + ([f"... and {len(self.problems) - 20} more"]
                                          if len(self.problems) > 20 else [])
            lines = shown[0] if len(shown) == 1 else "\n  " + "\n  ".join(shown)
            raise VerificationError(f"{self.origin}: not a valid {self.what}: {lines}", hint=self.hint)

    def header(self, doc: Any, fmt: str, keys: set[str]) -> None:
        if not isinstance(doc, dict) or doc.get("format") != fmt:
            self.fail("$.format", f"not '{fmt}'")
            self.done()
        if doc.get("version") != VERSION:
            self.fail("$.version", f"{doc.get('version')!r}; this vcomp reads version {VERSION}")
            self.hint = "upgrade vcomp to one that reads this version"
            self.done()
        for key in sorted(set(doc) - keys):
            self.fail(f"$.{key}", "not a field of this document")

    def _get(self, doc: Any, key: str, at: str) -> tuple[str, Any]:
        """(path, value); a missing key is noted, and its value is ``_MISSING``."""
        path = f"{at}.{key}"
        if not isinstance(doc, dict) or key not in doc:
            self.fail(path, "missing")
            return path, _MISSING
        return path, doc[key]

    def text(self, doc: Any, key: str, pattern: re.Pattern[str], *, at: str = "$") -> str:
        path, value = self._get(doc, key, at)
        if value is _MISSING:
            return ""
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(path, f"{_show(value)} is not {_PATTERNS.get(pattern, 'valid')}")
            return ""
        return value

    def name(self, doc: Any, key: str) -> str:
        return self.text(doc, key, _NAME)

    def optional(self, doc: Any, key: str, pattern: re.Pattern[str]) -> str | None:
        path, value = self._get(doc, key, "$")
        if value is None or value is _MISSING:
            return None
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(path, f"{_show(value)} is not null or {_PATTERNS.get(pattern, 'valid')}")
            return None
        return value

    def size(self, doc: Any, key: str, *, at: str = "$", minimum: int = 0) -> int:
        path, value = self._get(doc, key, at)
        if value is _MISSING:
            return 0
        if type(value) is not int or not minimum <= value <= MAX_FILE_SIZE:
            self.fail(path, f"{_show(value)} is not a size ({minimum} to {MAX_FILE_SIZE} bytes)")
            return 0
        return value

    def generation(self, doc: Any, key: str, *, at: str = "$") -> int:
        path, value = self._get(doc, key, at)
        if value is _MISSING:
            return 0
        if type(value) is not int or not 1 <= value <= MAX_GENERATION:
            self.fail(path, f"{_show(value)} is not a generation (1 to {MAX_GENERATION})")
            return 0
        return value

    def roles(self, doc: Any, key: str, *fields: str, verity: bool) -> list[tuple[str, Mapping[str, Any]]]:
        """(role, object) of ``doc[key]``, in ROLES order; the required roles, verity exactly ``verity``."""
        path, value = self._get(doc, key, "$")
        if not isinstance(value, dict):
            if value is not _MISSING:
                self.fail(path, "not an object")
            return []
        out: list[tuple[str, Mapping[str, Any]]] = []
        for role in sorted(set(value) - set(ROLES)):
            self.fail(f"{path}.{_show(role, 40)}", f"not a role (the roles: {', '.join(ROLES)})")
        wanted = REQUIRED_ROLES + (("verity",) if verity else ())
        for role in ROLES:
            item = value.get(role)
            if role not in wanted:
                if item is not None:
                    self.fail(f"{path}.{role}", "present, but $.roothash is null (verity goes with a root hash)")
                continue
            if not isinstance(item, dict):
                self.fail(f"{path}.{role}", "missing" if item is None else "not an object")
                continue
            for extra in sorted(set(item) - set(fields)):
                self.fail(f"{path}.{role}.{_show(extra, 40)}", "not a field")
            out.append((role, item))
        return out

    def history(self, doc: Any) -> tuple[HistoryEntry, ...]:
        path, value = self._get(doc, "history", "$")
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_HISTORY:
            if value is not _MISSING:
                self.fail(path, f"not a list of 1 to {MAX_HISTORY} entries")
            return ()
        out = []
        for n, item in enumerate(value):
            at = f"{path}[{n}]"
            if not isinstance(item, dict) or set(item) != {"generation", "commit", "action"}:
                self.fail(at, "not {generation, commit, action}")
                continue
            action = item["action"]
            if action not in ACTIONS:
                self.fail(f"{at}.action", f"{_show(action)} is not one of {', '.join(ACTIONS)}")
            out.append(HistoryEntry(generation=self.generation(item, "generation", at=at),
                                    commit=self._commit(item, at), action=str(action)))
        return tuple(out)

    def _commit(self, item: Mapping[str, Any], at: str) -> str | None:
        value = item.get("commit")
        if value is None:
            return None
        if not isinstance(value, str) or not _COMMIT.match(value):
            self.fail(f"{at}.commit", f"{_show(value)} is not null or a git commit id")
            return None
        return value


_PATTERNS: Mapping[re.Pattern[str], str] = {
    _NAME: "a name (1-48 of a-z 0-9 _ -)", _SEGMENT: "a file name (one path segment)",
    _HEX64: "a sha256 hex digest", _ROOTHASH: "a verity root hash (hex)", _COMMIT: "a git commit id (hex)",
    _IMAGE: "an image name",
}


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_commit(value: str | None) -> str | None:
    """A commit id given on the command line or by git: lower-case hex (40 or 64), or None."""
    if value is None:
        return None
    if not _COMMIT.match(value):
        raise ValueError(f"commit '{value}' is not a git commit id (40 or 64 lower-case hex digits)")
    return value

