"""``vcomp import debian``: Debian binary packages of one or more suites as signed ``.vpk`` files (design14 §4).

The steps, each a function the CLI times and reports (``docs/packages/import.md``):

1. :func:`suite_stanzas`: the ``Packages`` stanzas of the asked suites from the private apt state of
   :class:`~composer.package.debian.DebianArchive` (apt checked the signed ``InRelease``), or
   :func:`file_stanzas` from local ``Packages`` files (offline studies, tests);
2. :func:`plan`: which packages: the names, their closure, or everything; every version of them across the
   suites (:func:`composer.package.debimport.select_versions`), mapped to metadata, with what could not be
   expressed counted;
3. :func:`build_metadata_only` (:mod:`composer.package.bulk`) or :func:`build_with_payload` (each ``.deb``
   downloaded, its sha256 checked against the signed index, unpacked, conffiles as role ``config``, its
   maintainer scripts and shipped sysusers.d/tmpfiles.d/unit files translated into ``[actions]`` with what
   could not be translated recorded: ``composer.package.debactions``).
"""

from __future__ import annotations

import collections
import difflib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from composer.arch import Arch
from composer.errors import UserError, VerificationError, combine
from composer.fsutil import sha256_bytes
from composer.package import debimport, dep5
from composer.package.archive import Staged, write_package
from composer.package.bulk import BuiltFile, build_many, file_name
from composer.package.deb822 import Stanza, parse_stanzas
from composer.package.debactions import MAX_SCRIPT, SCRIPTS, SYSUSERS_DIRS, TMPFILES_DIRS, UNIT_DIRS, translate
from composer.package.debian import DEFAULT_SUITE, SUITES, DebianArchive, DebRef, pockets, release_of
from composer.package.debimport import DebMetadata
from composer.package.manifest import Entry, reserved_errors
from composer.package.metadata import Metadata
from composer.rootfs import Root, UnsafePath
from composer.run import run
from composer.trust.keys import SigningKey

MAX_FILE_BYTES = 512 << 20   # a local Packages file (decompressed)
MAX_FILES = 1000             # sysusers.d, tmpfiles.d or unit files read from one directory of a .deb
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What to import: ``names`` (with their ``closure``, Recommends too with ``recommends``) or ``everything``."""

    names: tuple[str, ...] = ()
    closure: bool = False
    recommends: bool = False
    everything: bool = False
    newest_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The packages to build (sorted by name, arch, version order) and what could not be expressed."""

    packages: tuple[DebMetadata, ...]
    stanzas: int
    counts: dict[str, int] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()      # names the closure reached that no stanza has or provides


# ----------------------------------------------------------------- 1. the index

def release(suites: Sequence[str]) -> str:
    """The one Debian release the archive suites (pockets) name: ``trixie`` for ``trixie``, ``trixie-updates``
    and ``trixie-security``; :data:`DEFAULT_SUITE` for none. Pockets of two releases are refused (each release
    has its own private apt state)."""
    known = sorted(p for s in SUITES for p in pockets(s))
    unknown = [s for s in suites if release_of(s) is None]
    if unknown:
        raise UserError(f"suite {', '.join(unknown)} is not one vcomp knows ({', '.join(known)})",
                        hint="import from these suites, or from a local Packages file with --packages FILE")
    releases = sorted({r for s in suites if (r := release_of(s))})
    if len(releases) > 1:
        raise UserError(f"suites of {len(releases)} Debian releases ({', '.join(releases)}) in one import",
                        hint="import each release on its own (each has its own package index and versions)")
    return releases[0] if releases else DEFAULT_SUITE


def suite_stanzas(archive: DebianArchive, arch: Arch, suites: Sequence[str]) -> tuple[Stanza, ...]:
    """The stanzas of ``suites`` (main, ``arch``) in the order given, from apt's lists (updated first), read
    from the private state of their release (:func:`release`)."""
    from composer.package.debfixture import archive_packages
    archive = archive.for_suite(release(suites))
    out: list[Stanza] = []
    for suite in dict.fromkeys(suites):
        packages, _inrelease = archive_packages(archive, arch, suite=suite)
        out.extend(parse_stanzas(packages, f"{suite}/main/binary-{arch.deb}/Packages"))
    return tuple(out)


def file_stanzas(paths: Sequence[Path]) -> tuple[Stanza, ...]:
    """The stanzas of local Packages files (plain or ``.zst``), in the order given."""
    from composer.package.debfixture import decompress
    out: list[Stanza] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read the Packages file ({exc.strerror})",
                            hint="pass a Debian Packages file (plain or .zst)") from None
        if path.suffix == ".zst":
            data = decompress(data, limit=MAX_FILE_BYTES).encode()
        out.extend(parse_stanzas(data, path.name))
    return tuple(out)


# ----------------------------------------------------------------- 2. what to import

def _wanted(stanzas: Sequence[Stanza], request: Request) -> tuple[tuple[Stanza, ...], tuple[str, ...]]:
    if request.everything:
        return tuple(stanzas), ()
    if request.closure:
        reached = debimport.closure(stanzas, request.names, recommends=request.recommends)
        names = set(reached.names)
        return tuple(s for s in stanzas if s.fields.get("Package") in names), reached.missing
    names = set(request.names)
    found = {s.fields.get("Package") for s in stanzas}
    unknown = sorted(names - found)
    if unknown:
        near = difflib.get_close_matches(unknown[0], sorted(n for n in found if n), n=3, cutoff=0.6)
        raise UserError(f"no package {', '.join(unknown)} in the suites' index",
                        hint=(f"did you mean {', '.join(near)}? " if near else "")
                        + "a virtual name is imported with --closure (it brings its providers)")
    return tuple(s for s in stanzas if s.fields.get("Package") in names), ()


def plan(stanzas: Sequence[Stanza], request: Request) -> Plan:
    """The packages to import for ``request`` and the counts of what could not be expressed (pure)."""
    wanted, missing = _wanted(stanzas, request)
    mapped = debimport.map_stanzas(wanted)
    chosen = debimport.select_versions(mapped.packages, newest_only=request.newest_only)
    counts = collections.Counter(mapped.report.counts)
    counts.update(chosen.counts)
    if missing:
        counts["relation target no stanza has or provides (closure)"] += len(missing)
    equal = debimport.equal_version_classes(chosen.packages)
    if equal:
        counts["dpkg-equal version texts across names (one order, each keeps its text)"] += equal
    return Plan(packages=chosen.packages, stanzas=len(stanzas), counts=dict(counts), skipped=chosen.skipped,
                missing=missing)


# ----------------------------------------------------------------- 3. building

def build_metadata_only(packages: Sequence[DebMetadata], *, key: SigningKey, epoch: int, out_dir: Path,
                        jobs: int = 1, progress: Progress | None = None) -> list[BuiltFile]:
    """Metadata-only packages (empty payload) in bulk, in ``packages`` order."""
    docs = [m.metadata_dict() for m in packages]
    return build_many(docs, key=key, epoch=epoch, out_dir=out_dir, jobs=jobs,
                      progress=progress or (lambda done, total: None))


def conffiles(deb: Path) -> frozenset[str]:
    """The paths (without the leading ``/``) the ``.deb``'s control ``conffiles`` lists (``remove-on-upgrade``
    entries are not conffiles of the installed package)."""
    result = run(["dpkg-deb", "--info", str(deb), "conffiles"], check=False, timeout=300)
    if result.returncode != 0:
        return frozenset()
    out = set()
    for line in result.stdout.decode(errors="surrogateescape").splitlines():
        path, _, flags = line.strip().partition(" ")
        if path.startswith("/") and "remove-on-upgrade" not in flags:
            out.add(path.lstrip("/"))
    return frozenset(out)


def scan_unpacked(root: Path, config: frozenset[str]) -> list[Staged]:
    """Manifest entries of an unpacked ``.deb`` with its own modes (setuid bits included), sorted by path;
    conffiles (and every file under ``etc/``) get role ``config``, the others the builder's default roles."""
    from composer.package.build import role_of, walk_tree
    out: list[Staged] = []
    for rel, full, st in walk_tree(root):
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out.append(Staged(entry=Entry(path=rel, type="symlink", mode=0o777, target=os.readlink(full))))
        elif stat.S_ISDIR(st.st_mode):
            out.append(Staged(entry=Entry(path=rel, type="dir", mode=mode)))
        elif stat.S_ISREG(st.st_mode):
            role = "config" if rel in config or rel.startswith("etc/") else role_of(rel, mode, {})
            out.append(Staged(entry=Entry(path=rel, type="file", mode=mode, role=role), source=full))
        else:
            raise UserError(f"{rel}: a special file in a .deb cannot be packaged",
                            hint="import this package metadata-only (--metadata-only)")
    return sorted(out, key=lambda s: s.entry.path)


def build_with_payload(meta: DebMetadata, *, archive: DebianArchive, arch: Arch, key: SigningKey, epoch: int,
                       out_dir: Path) -> BuiltFile:
    """Download the ``.deb`` (apt checks it against the signed index; its sha256 is checked again against the
    stanza's), unpack it and build the full package: payload, conffiles as config, provenance."""
    ref, deb = archive.download(arch, DebRef(name=meta.name, version=meta.upstream_version, arch=meta.source.arch))
    if ref.sha256 != meta.source.sha256:
        raise VerificationError(f"{deb}: sha256 {ref.sha256[:16]}... differs from the index's "
                                f"{meta.source.sha256[:16]}... for {meta.text}",
                                hint="the download is corrupt or the lists are stale: run the import again")
    tree = archive.unpack(deb, ref.sha256)
    staged = scan_unpacked(tree, conffiles(deb))
    reserved = reserved_errors([s.entry for s in staged], meta.name, str(deb))
    if reserved:
        raise combine([UserError(e.message, hint=e.hint) for e in reserved],
                      summary=f"{deb}: ships {len(reserved)} paths reserved for vcomp")
    translation = translate(package=meta.name, control=control_members(deb), files=action_files(tree),
                            shipped=frozenset(s.entry.path for s in staged))
    doc = meta.metadata_dict()
    copyright_text = copyright_file(tree, meta.name)
    if copyright_text is not None:   # none (a doc directory linked to another package's): the constant stays
        package = doc["package"]
        assert isinstance(package, dict)
        package["license"] = dep5.to_spdx(copyright_text)
    if translation.actions:
        doc["actions"] = translation.actions
    metadata = Metadata.from_dict(doc)
    path = out_dir / file_name(metadata)
    write_package(path, metadata=metadata, staged=staged, key=key, epoch=epoch)
    data = path.read_bytes()
    return BuiltFile(name=path.name, sha256=sha256_bytes(data), size=len(data),
                     untranslated=translation.untranslated)


def copyright_file(tree: Path, name: str) -> bytes | None:
    """The head (:data:`composer.package.dep5.MAX_BYTES`) of the unpacked ``.deb``'s
    ``usr/share/doc/NAME/copyright``, read through the confined layer; None when it is not a regular file."""
    rel = f"usr/share/doc/{name}/copyright"
    with Root.open(tree) as root:
        try:
            if not root.is_file(rel):
                return None
        except UnsafePath:       # the doc directory is a link to another package's (libgcc-s1 -> gcc-14-base)
            return None
        with root.open_read(rel) as f:
            return f.read(dep5.MAX_BYTES)


def control_members(deb: Path) -> dict[str, bytes]:
    """The ``.deb``'s maintainer scripts and triggers that matter to a fresh install (``debactions.SCRIPTS``)."""
    out = {}
    for name in (*SCRIPTS, "triggers"):
        result = run(["dpkg-deb", "--info", str(deb), name], check=False, timeout=300)
        if result.returncode == 0:
            out[name] = result.stdout[:MAX_SCRIPT]
    return out


def action_files(tree: Path) -> dict[str, bytes]:
    """The unpacked ``.deb``'s sysusers.d, tmpfiles.d and systemd unit files (regular files, read through the
    confined layer, each bounded)."""
    out: dict[str, bytes] = {}
    with Root.open(tree) as root:
        for directory in (*SYSUSERS_DIRS, *TMPFILES_DIRS, *UNIT_DIRS):
            if not root.is_dir(directory):
                continue
            for name in root.listdir(directory)[:MAX_FILES]:
                rel = f"{directory}/{name}"
                if (name.endswith((".conf", ".service"))) and root.is_file(rel):
                    out[rel] = root.read_bytes(rel, MAX_SCRIPT)
    return out
