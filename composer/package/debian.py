"""Debian binary packages as a source: resolve, download and unpack .debs for any architecture and suite.

apt runs with a private state (lists, cache, status, sources) per suite and architecture under the composer
cache (``debian/apt/SUITE/ARCH``), so the host's dpkg database is never touched and foreign architectures need
no ``dpkg --add-architecture``. apt checks the archive's signatures (Release -> Packages -> .deb hash) with
Debian's keyring. The suite is data: :data:`SUITES` lists the ones known, :data:`DEFAULT_SUITE` is used when a
recipe or ``vcomp import debian`` names none (docs/packages/debimport.md).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from composer import lockfile, settings
from composer.arch import Arch
from composer.errors import FetchError, ToolError, UserError
from composer.fsutil import atomic_write, sha256_file
from composer.run import run

MIRROR_ENV = settings.DEBIAN_MIRROR.name
SECURITY_MIRROR_ENV = settings.DEBIAN_SECURITY_MIRROR.name
# Debian releases a recipe or an import may name (codename -> release); each has the pockets of POCKETS.
SUITES = {"bookworm": "Debian 12", "trixie": "Debian 13"}
DEFAULT_SUITE = "trixie"
POCKETS = ("", "-updates", "-security")   # main, then the point-release updates and the security archive
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE = 6 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class DebRef:
    name: str
    version: str
    arch: str          # Debian architecture of the .deb (may be 'all')
    sha256: str = ""

    def to_provenance(self) -> dict[str, str]:
        return {"kind": "deb", "name": self.name, "version": self.version, "arch": self.arch,
                "sha256": self.sha256}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every vcomp process using this cache (apt runs unlocked): a second
    process says whom it waits for, ``--no-wait`` fails at once (``composer.lockfile``)."""
    with lockfile.exclusive(path, f"the Debian package cache {path.parent}"):
        yield


def check_suite(suite: str, where: str = "suite") -> str:
    """``suite`` when it is a known Debian release codename, else a UserError naming ``where``."""
    if suite not in SUITES:
        raise UserError(f"{where}: unknown Debian suite '{suite}'",
                        hint=f"use one of {', '.join(sorted(SUITES))} (default {DEFAULT_SUITE})")
    return suite


def pockets(suite: str) -> tuple[str, ...]:
    """The archive suites apt's sources.list holds for release ``suite``: main, -updates, -security."""
    return tuple(suite + p for p in POCKETS)


def release_of(pocket: str) -> str | None:
    """The release codename of a pocket (``trixie-security`` -> ``trixie``), None when it is none of ours."""
    return next((s for s in SUITES for p in POCKETS if pocket == s + p), None)


def _sources(suite: str) -> str:
    mirror = settings.DEBIAN_MIRROR.get()
    security = settings.DEBIAN_SECURITY_MIRROR.get()
    opt = f"[signed-by={KEYRING}]"
    return (f"deb {opt} {mirror} {suite} main\n"
            f"deb {opt} {mirror} {suite}-updates main\n"
            f"deb {opt} {security} {suite}-security main\n")


def parse_rdepends(text: str) -> dict[str, list[str]]:
    """``apt-cache rdepends`` output: a name line, ``Reverse Depends:``, then indented (``|``-marked) names."""
    found: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("Reverse Depends:"):
            continue
        if line[0].isspace():
            if current:
                found[current].add(line.strip().lstrip("|"))
        else:
            current = line.strip()
            found.setdefault(current, set())
    return {k: sorted(v) for k, v in found.items()}


class DebianArchive:
    """A private apt state of one Debian ``suite`` per architecture inside ``cache``; :meth:`for_suite` gives
    the same cache's state of another suite (recipes may name their own)."""

    def __init__(self, cache: Path, *, suite: str = DEFAULT_SUITE) -> None:
        self.cache = cache / "debian"
        self.suite = check_suite(suite)
        self._updated: set[str] = set()
        self._lookups: dict[str, dict[tuple[str, str], str]] = {}
        self._siblings: dict[str, DebianArchive] = {suite: self}

    def for_suite(self, suite: str) -> DebianArchive:
        """The archive of ``suite`` over the same cache (one object per suite, so lookups stay cached)."""
        if suite not in self._siblings:
            sibling = DebianArchive(self.cache.parent, suite=suite)
            sibling._siblings = self._siblings
            self._siblings[suite] = sibling
        return self._siblings[suite]

    def _root(self, arch: Arch) -> Path:
        return self.cache / "apt" / self.suite / arch.deb

    def _lock(self, arch: Arch) -> Path:
        return self.cache / f".lock-{self.suite}-{arch.deb}"

    def _opts(self, arch: Arch) -> list[str]:
        root = self._root(arch)
        return [
            "-o", "Debug::NoLocking=1", "-o", f"APT::Architecture={arch.deb}",
            "-o", f"APT::Architectures::={arch.deb}", "-o", "APT::Sandbox::User=root",
            "-o", f"Dir::State::Lists={root}/lists", "-o", f"Dir::Cache={root}/cache",
            "-o", f"Dir::State::status={root}/status", "-o", f"Dir::Etc::SourceList={root}/sources.list",
            "-o", f"Dir::Etc::SourceParts={root}/sources.list.d", "-o", f"Dir::Etc::Preferences={root}/preferences",
            "-o", f"Dir::Etc::PreferencesParts={root}/preferences.d", "-o", "Acquire::Languages=none",
            "-q",
        ]

    def update(self, arch: Arch, *, force: bool = False) -> None:
        if arch.deb in self._updated and not force:
            return
        root = self._root(arch)
        with _locked(self._lock(arch)):
            self._update_locked(arch, root, force)
        self._updated.add(arch.deb)

    def _update_locked(self, arch: Arch, root: Path, force: bool) -> None:
        for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "status").touch()
        sources = _sources(self.suite).encode()
        stamp = root / "lists" / ".updated"
        fresh = (stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE
                 and (root / "sources.list").exists() and (root / "sources.list").read_bytes() == sources)
        if not fresh or force:
            if not Path(KEYRING).exists():
                raise ToolError(f"Debian's archive keyring {KEYRING} is missing",
                                hint="install it with: apt-get install debian-archive-keyring")
            atomic_write(root / "sources.list", sources)
            try:
                run(["apt-get", *self._opts(arch), "update"], timeout=600)
            except ToolError as exc:
                raise FetchError(f"cannot fetch Debian package lists of {self.suite} for {arch.deb}: {exc.message}",
                                 hint=f"check the network or set {MIRROR_ENV} to a reachable mirror") from None
            stamp.touch()

    def _sections(self, arch: Arch, verb: str, names: list[str]) -> dict[str, str]:
        """Run one apt-cache VERB for many names; split its output into per-package sections."""
        out = run(["apt-cache", *self._opts(arch), verb, *names], check=False).stdout.decode()
        sections: dict[str, str] = {}
        current = ""
        for line in out.splitlines():
            if line and not line[0].isspace() and not line.startswith("<"):
                current = line.rstrip(":").strip()
                sections[current] = ""
            elif current:
                sections[current] += line + "\n"
        return sections

    def rdepends(self, arch: Arch, names: list[str]) -> dict[str, list[str]]:
        """``apt-cache rdepends`` of many names in one call: name -> the names depending on it (sorted)."""
        self.update(arch)
        out = run(["apt-cache", *self._opts(arch), "rdepends", *names], check=False).stdout.decode()
        return parse_rdepends(out)

    def prefetch(self, arch: Arch, specs: list[tuple[str, str]]) -> None:
        """Look up many (name, follow) pairs with two apt-cache calls instead of two each."""
        self.update(arch)
        cache = self._lookups.setdefault(arch.deb, {})
        metas = sorted({n for n, f in specs if f and ("depends", n) not in cache})
        if metas:
            for name, text in self._sections(arch, "depends", metas).items():
                cache[("depends", name)] = text
            for n in metas:
                cache.setdefault(("depends", n), "")
        names = {n for n, f in specs if not f}
        for n, f in specs:
            if f:
                names.update(self._follow(arch, n, f, strict=False))
        todo = sorted(n for n in names if ("policy", n) not in cache)
        if todo:
            for name, text in self._sections(arch, "policy", todo).items():
                cache[("policy", name)] = text
            for n in todo:
                cache.setdefault(("policy", n), "")

    def names(self, arch: Arch, prefix: str) -> list[str]:
        """The package names of the suite's index that start with ``prefix`` (``apt-cache pkgnames``), sorted."""
        self.update(arch)
        out = run(["apt-cache", *self._opts(arch), "pkgnames", prefix], check=False).stdout.decode()
        return sorted(set(out.split()))

    def _lookup(self, arch: Arch, verb: str, name: str) -> str:
        cache = self._lookups.setdefault(arch.deb, {})
        if (verb, name) not in cache:
            cache[(verb, name)] = self._sections(arch, verb, [name]).get(name, "")
        return cache[(verb, name)]

    def _follow(self, arch: Arch, name: str, follow: str, *, strict: bool = True) -> list[str]:
        deps = [d for d in re.findall(r"^\s+Depends:\s*(\S+)", self._lookup(arch, "depends", name), re.M)
                if fnmatch.fnmatch(d, follow)]
        if not deps and strict:
            raise FetchError(f"Debian package '{name}' ({arch.deb}, {self.suite}) has no dependency matching "
                             f"'{follow}'", hint="check the package name and the 'follow' pattern")
        return deps[:1]

    def resolve(self, arch: Arch, name: str, *, version: str = "", follow: str = "") -> DebRef:
        """Find the .deb to use: the candidate (or the pinned version), following a metapackage."""
        self.update(arch)
        if follow:
            name = self._follow(arch, name, follow)[0]
        text = self._lookup(arch, "policy", name)
        cand = re.search(r"Candidate:\s*(\S+)", text)
        candidate = cand.group(1) if cand and cand.group(1) != "(none)" else ""
        versions = re.findall(r"^\s+(?:\*\*\* )?(\S+) \d+$", text, re.M)
        if not candidate:
            raise FetchError(f"Debian package '{name}' does not exist for {arch.deb} in {self.suite}",
                             hint=f"look it up with: apt-cache search {name.split('-')[0]}")
        if version and version not in versions:
            raise FetchError(f"Debian package '{name}' version {version} is not available for {arch.deb} "
                             f"in {self.suite} (available: {', '.join(versions) or 'none'})",
                             hint="remove the version pin or update it")
        return DebRef(name=name, version=version or candidate, arch=arch.deb)

    def download(self, arch: Arch, ref: DebRef) -> tuple[DebRef, Path]:
        pool = self.cache / "debs" / arch.deb  # same name and version exist for every architecture
        pool.mkdir(parents=True, exist_ok=True)
        safe_version = ref.version.replace(":", "%3a")
        with _locked(self._lock(arch)):
            path = self._download_locked(arch, ref, pool, safe_version)
        deb_arch = path.stem.rsplit("_", 1)[-1]
        return DebRef(name=ref.name, version=ref.version, arch=deb_arch, sha256=sha256_file(path)), path

    def _download_locked(self, arch: Arch, ref: DebRef, pool: Path, safe_version: str) -> Path:
        found = [p for p in (pool / f"{ref.name}_{safe_version}_{a}.deb" for a in (arch.deb, "all")) if p.exists()]
        if not found:
            with tempfile.TemporaryDirectory(dir=pool) as tmp:
                try:
                    run(["apt-get", *self._opts(arch), "download", f"{ref.name}={ref.version}"],
                        cwd=Path(tmp), timeout=1200)
                except ToolError as exc:
                    raise FetchError(f"cannot download Debian package {ref.name}={ref.version} "
                                     f"({arch.deb}, {self.suite}): {exc.message}",
                                     hint="check the network and the package name") from None
                debs = list(Path(tmp).glob("*.deb"))
                if len(debs) != 1 or debs[0].stem.rsplit("_", 1)[-1] not in (arch.deb, "all"):
                    raise FetchError(f"apt-get download {ref.name} for {arch.deb} produced "
                                     f"{[d.name for d in debs]}, not one {arch.deb} or all package")
                with debs[0].open("rb") as f:   # on disk before its name says it is complete
                    os.fsync(f.fileno())
                os.replace(debs[0], pool / debs[0].name)
                found = [pool / debs[0].name]
        return found[0]

    def unpack(self, deb: Path, sha256: str) -> Path:
        """Unpack a .deb's data once into a cache directory keyed by its sha256."""
        dest = self.cache / "unpacked" / sha256
        if dest.is_dir():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
        try:
            run(["dpkg-deb", "--extract", str(deb), str(tmp)], timeout=900)
            os.replace(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not dest.is_dir():  # another process won the race: use its copy
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def fetch(self, arch: Arch, name: str, *, version: str = "", follow: str = "") -> tuple[DebRef, Path]:
        ref, deb = self.download(arch, self.resolve(arch, name, version=version, follow=follow))
        return ref, self.unpack(deb, ref.sha256)
