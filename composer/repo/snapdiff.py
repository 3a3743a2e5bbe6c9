"""Snapshot patches (pure): the few segments of a snapshot file that changed since the previous version.

A snapshot of a hash-binned repository lists every bin (``"bins-0a3.json":{"version":7}``): thousands of
entries, of which a publish changes a handful. A client that holds the previous snapshot downloads a patch
instead of the whole file, like apt's pdiffs: the patch is untrusted, and what it gives is verified by the
TUF client exactly as a downloaded snapshot (signatures, version, the timestamp's length and hash).

Both files are split losslessly at ``,"`` (one segment per JSON member: ``b',"'.join(x.split(b',"')) == x``)
and a patch is canonical JSON::

    {"format": "vcomp-snapshot-patch/1",
     "from": {"length": 412233, "sha256": "..."},          the bytes it applies to
     "to":   {"length": 412233, "sha256": "..."},          the bytes it gives
     "ops":  [[START, END, ["segment", ...]], ...]}        old segments [START, END) replaced by these

Ops are sorted and do not overlap; a segment is the bytes as Latin-1 text (every byte one code point).
:func:`apply_patch` trusts none of it: sizes, op counts and ranges are bounded, and both ends are checked by
hash; any problem is one :class:`~composer.errors.VerificationError`, which the caller answers with a full
download.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from composer.errors import VerificationError
from composer.fsutil import canonical_json

FORMAT = "vcomp-snapshot-patch/1"
SEPARATOR = b',"'
MAX_PATCH_BYTES = 1 << 20        # a patch larger than this is not read (nor published)
MAX_OPS = 1 << 14                # ranges in one patch
MAX_RESULT_BYTES = 64 << 20      # a patched snapshot larger than this is refused before it is built
HINT = "the patch is corrupt, hostile or for another snapshot; the full snapshot is downloaded instead"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileId:
    """The length and sha256 of a snapshot file."""

    length: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> FileId:
        return cls(length=len(data), sha256=hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, value: Any, where: str) -> FileId:
        if not isinstance(value, dict) or set(value) != {"length", "sha256"}:
            raise ValueError(f"'{where}' must be an object with 'length' and 'sha256'")
        length, digest = value["length"], value["sha256"]
        if type(length) is not int or not 0 <= length <= MAX_RESULT_BYTES:
            raise ValueError(f"'{where}.length' must be an integer from 0 to {MAX_RESULT_BYTES}")
        if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise ValueError(f"'{where}.sha256' must be 64 lower-case hex digits")
        return cls(length=length, sha256=digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """Old segments ``[start, end)`` replaced by ``segments``."""

    start: int
    end: int
    segments: tuple[bytes, ...]

    def to_list(self) -> list[Any]:
        return [self.start, self.end, [s.decode("latin-1") for s in self.segments]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Patch:
    source: FileId
    result: FileId
    ops: tuple[Op, ...]

    def to_bytes(self) -> bytes:
        return canonical_json({"format": FORMAT, "from": self.source.to_dict(), "to": self.result.to_dict(),
                               "ops": [op.to_list() for op in self.ops]})

    @classmethod
    def from_bytes(cls, data: bytes, *, origin: str) -> Patch:
        """Parse and bound a patch (any problem: VerificationError naming ``origin`` and the place)."""
        if len(data) > MAX_PATCH_BYTES:
            raise VerificationError(f"{origin}: a snapshot patch of {len(data)} bytes (at most {MAX_PATCH_BYTES})",
                                    hint=HINT)
        try:
            return cls._from_dict(json.loads(data))
        except (ValueError, RecursionError, UnicodeError) as exc:
            raise VerificationError(f"{origin}: not a snapshot patch ({exc})", hint=HINT) from None

    @classmethod
    def _from_dict(cls, given: Any) -> Patch:
        if not isinstance(given, dict) or set(given) != {"format", "from", "to", "ops"}:
            raise ValueError("expected an object with exactly 'format', 'from', 'to' and 'ops'")
        if given["format"] != FORMAT:
            raise ValueError(f"'format' is {str(given['format'])[:40]!r}, not {FORMAT!r}")
        ops = given["ops"]
        if not isinstance(ops, list) or len(ops) > MAX_OPS:
            raise ValueError(f"'ops' must be a list of at most {MAX_OPS} ranges")
        return cls(source=FileId.from_dict(given["from"], "from"), result=FileId.from_dict(given["to"], "to"),
                   ops=tuple(_op(op, f"ops[{i}]") for i, op in enumerate(ops)))


def _op(value: Any, where: str) -> Op:
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int and type(value[1]) is int
            and isinstance(value[2], list) and all(isinstance(s, str) for s in value[2])):
        raise ValueError(f"'{where}' must be [START, END, [SEGMENT, ...]]")
    start, end, texts = value
    if not 0 <= start <= end or (start == end and not texts):
        raise ValueError(f"'{where}' has an empty or reversed range {start}..{end}")
    return Op(start=start, end=end, segments=tuple(s.encode("latin-1") for s in texts))   # > U+00FF: UnicodeError


def segments(data: bytes) -> list[bytes]:
    """``data`` split at every ``,"`` (lossless: joined with ``,"`` it is ``data`` again)."""
    return data.split(SEPARATOR)


def diff(old: Sequence[bytes], new: Sequence[bytes]) -> tuple[Op, ...]:
    """The ranges of ``old`` to replace to make ``new``. The usual publish changes bins' versions in place (as
    many segments before as after): the differing runs, found in one pass. Otherwise difflib's matching (no junk
    heuristic), on what lies between the common head and tail only (difflib over 20,000 segments took 0.28 s)."""
    if len(old) == len(new):
        return _runs(old, new)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    a, b = old[head:len(old) - tail], new[head:len(new) - tail]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return tuple(Op(start=head + i1, end=head + i2, segments=tuple(b[j1:j2]))
                 for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def _runs(old: Sequence[bytes], new: Sequence[bytes]) -> tuple[Op, ...]:
    """The runs of positions where two sequences of one length differ, as replacements."""
    ops: list[Op] = []
    i, n = 0, len(old)
    while i < n:
        if old[i] == new[i]:
            i += 1
            continue
        start = i
        while i < n and old[i] != new[i]:
            i += 1
        ops.append(Op(start=start, end=i, segments=tuple(new[start:i])))
    return tuple(ops)


def make_patch(old: bytes, new: bytes) -> bytes:
    """The patch document (canonical JSON, deterministic) turning ``old`` into ``new``."""
    return Patch(source=FileId.of(old), result=FileId.of(new), ops=diff(segments(old), segments(new))).to_bytes()


def apply_patch(base: bytes, patch: bytes, *, origin: str, max_length: int = MAX_RESULT_BYTES) -> bytes:
    """The bytes ``patch`` makes of ``base``, checked: ``base`` must be the patch's source (length, sha256), the
    ranges within it, and the result (at most ``max_length`` bytes) the patch's result. VerificationError
    otherwise (the caller downloads the full file)."""
    parsed = Patch.from_bytes(patch, origin=origin)
    if FileId.of(base) != parsed.source:
        raise VerificationError(f"{origin}: the patch is for another snapshot (sha256 {parsed.source.sha256[:16]}, "
                                f"{parsed.source.length} bytes)", hint=HINT)
    if parsed.result.length > max_length:
        raise VerificationError(f"{origin}: the patch gives {parsed.result.length} bytes (at most {max_length})",
                                hint=HINT)
    limit = parsed.result.length
    old = segments(base)
    out: list[bytes] = []
    size = -len(SEPARATOR)    # n segments have n - 1 separators
    at = 0
    for i, op in enumerate(parsed.ops):
        if op.start < at:
            raise VerificationError(f"{origin}: ops[{i}] ({op.start}..{op.end}) overlaps the previous range",
                                    hint=HINT)
        if op.end > len(old):
            raise VerificationError(f"{origin}: ops[{i}] ({op.start}..{op.end}) goes past the {len(old)} segments "
                                    "of the snapshot", hint=HINT)
        for piece in (old[at:op.start], op.segments):
            size += sum(len(s) for s in piece) + len(SEPARATOR) * len(piece)
            out += piece
        if size > limit:
            raise VerificationError(f"{origin}: the patch gives more than {limit} bytes", hint=HINT)
        at = op.end
    out += old[at:]
    data = SEPARATOR.join(out)
    if FileId.of(data) != parsed.result:
        raise VerificationError(f"{origin}: the patched snapshot is not the one the patch names "
                                f"(sha256 {parsed.result.sha256[:16]}, {parsed.result.length} bytes)", hint=HINT)
    return data
