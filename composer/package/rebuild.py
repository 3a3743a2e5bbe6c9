"""``vcomp pkg rebuild-check``: rebuild a package from its recipe in a clean temporary directory and compare it
with the published one, as reproducible-builds.org's rebuilders do (docs/quality.md).

A package's signature depends on who signed it, so the rebuild (signed with a throwaway key) is compared on what
the builder made: every manifest entry (path, type, mode, role, size, sha256, link target), the payload's
sha256 and the metadata without the signer's keys and signature. The result is ``identical`` or ``differs`` with the
differing files and metadata keys (:func:`compare`, pure), and is recorded in the repository directory's
``rebuilds.json`` keyed by the published package's sha256 (:class:`RebuildStore`; not served: only
``metadata/`` and ``targets/`` are), where the quality metrics read it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import settings
from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.package.archive import Header

STORE = "rebuilds.json"
MAX_STORE = 64 << 20
MAX_SHOWN = 50          # differing files listed in a result


@dataclass(frozen=True, slots=True, kw_only=True)
class RebuildResult:
    name: str
    version: str
    arch: str
    published_sha256: str        # the package file compared with
    rebuilt_payload_sha256: str
    identical: bool
    files: tuple[str, ...] = ()            # "changed PATH", "added PATH", "removed PATH" (at most MAX_SHOWN)
    metadata: tuple[str, ...] = ()         # metadata keys that differ
    more: int = 0                          # differing files not listed

    @property
    def verdict(self) -> str:
        return "identical" if self.identical else "differs"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "result": self.verdict,
                "published_sha256": self.published_sha256, "rebuilt_payload_sha256": self.rebuilt_payload_sha256,
                "files": list(self.files), "metadata": list(self.metadata), "more_files": self.more}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RebuildResult:
        return cls(name=str(d["name"]), version=str(d["version"]), arch=str(d["arch"]),
                   published_sha256=str(d["published_sha256"]),
                   rebuilt_payload_sha256=str(d["rebuilt_payload_sha256"]), identical=d["result"] == "identical",
                   files=tuple(str(f) for f in d.get("files", ())),
                   metadata=tuple(str(m) for m in d.get("metadata", ())), more=int(d.get("more_files", 0)))


def _entries(h: Header) -> dict[str, dict[str, Any]]:
    return {e.path: e.to_dict() for e in h.manifest.entries}


SIGNATURE_KEYS = ("signer", "public-key", "signature")   # [security] keys that say who signed, not what was built


def _metadata(h: Header) -> dict[str, Any]:
    d = h.metadata.to_dict()
    for key in SIGNATURE_KEYS:
        d.get("security", {}).pop(key, None)
    return d


def compare(published: Header, rebuilt: Header, *, published_sha256: str) -> RebuildResult:
    """What differs between the published package and the rebuild (pure)."""
    old, new = _entries(published), _entries(rebuilt)
    diffs = [f"changed {p}" for p in sorted(old.keys() & new.keys()) if old[p] != new[p]]
    diffs += [f"removed {p}" for p in sorted(old.keys() - new.keys())]
    diffs += [f"added {p}" for p in sorted(new.keys() - old.keys())]
    m_old, m_new = _metadata(published), _metadata(rebuilt)
    meta = sorted(f"{section}.{key}" for section in m_old.keys() | m_new.keys()
                  for key in (m_old.get(section) or {}).keys() | (m_new.get(section) or {}).keys()
                  if isinstance(m_old.get(section, {}), dict) and isinstance(m_new.get(section, {}), dict)
                  and (m_old.get(section) or {}).get(key) != (m_new.get(section) or {}).get(key))
    same_payload = published.manifest.payload_sha256 == rebuilt.manifest.payload_sha256
    if not same_payload and not diffs and not meta:
        diffs = ["changed (payload archive bytes; every file the same)"]
    m = published.metadata
    return RebuildResult(name=m.name, version=str(m.full_version), arch=m.arch, published_sha256=published_sha256,
                         rebuilt_payload_sha256=rebuilt.manifest.payload_sha256,
                         identical=same_payload and not diffs and not meta, files=tuple(diffs[:MAX_SHOWN]),
                         metadata=tuple(meta), more=max(0, len(diffs) - MAX_SHOWN))


class RebuildStore:
    """``DIR/rebuilds.json``: the published package's sha256 -> its last rebuild result."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STORE

    def read(self) -> dict[str, RebuildResult]:
        try:
            with self.path.open("rb") as f:
                data = f.read(MAX_STORE + 1)
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(data) if len(data) <= MAX_STORE else {}
            return {k: RebuildResult.from_dict(v) for k, v in doc.get("rebuilds", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"{self.path}: corrupt", hint="remove it; vcomp pkg rebuild-check records again") from None

    def get(self, sha256: str) -> RebuildResult | None:
        return self.read().get(sha256)

    def record(self, result: RebuildResult) -> None:
        results = self.read()
        results[result.published_sha256] = result
        doc = {"format": 1, "rebuilds": {k: v.to_dict() for k, v in sorted(results.items())}}
        atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")


def rebuild(recipe_dir: Path, arch: str, published: Header, *, cache: Path | None = None) -> Header:
    """Build ``recipe_dir`` for ``arch`` in a fresh temporary directory, signed with a throwaway key, at the
    published package's SOURCE_DATE_EPOCH; the rebuilt package's header."""
    from composer.package.archive import read_header
    from composer.package.build import build
    from composer.trust.keys import generate, load_signing_key
    epoch = published.metadata.provenance.get("source-date-epoch")
    with tempfile.TemporaryDirectory(prefix="vcomp-rebuild-") as tmp:
        key_path, _pub, _keyid = generate("rebuilder", Path(tmp))
        key = load_signing_key(key_path)
        with settings.overriding(settings.SOURCE_DATE_EPOCH, str(epoch) if isinstance(epoch, int) else None):
            built = build(recipe_dir, arch, key, Path(tmp) / "out", cache=cache)
        names = {built.path, *(s.path for s in built.split)}
        wanted = next((p for p in names if read_header(p).metadata.name == published.metadata.name), built.path)
        return read_header(wanted)
