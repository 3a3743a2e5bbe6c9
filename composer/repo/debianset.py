"""The sample Debian repository: the dependency closure of the ``server`` profile's Debian packages
(openssh-server, python3, nginx), of what ``vpk`` requires on a device (Debian's Python libraries of the
package manager, from recipes/vpk) and of gdbserver (live debugging in the guest), imported with payload from
Debian 13 for every sample architecture by ``vcomp import debian``'s library (:mod:`composer.package.importer`),
signed with the sample developer key and published into a second TUF repository (``images/debian``) whose root
is the committed ``profiles/trust/debian-root.json`` (docs/packages/closures.md).

It sits beside the sample repository (``images/repo``, the project's own recipes): the profile says which one
serves a name (pins and ``priority``, docs/upstream.md). ``make demo`` (``scripts/sample_repo.py``) and the
boot tests run this code. The library prints nothing: progress lines go to ``say``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.advisory.debian import Binary, debian_feed, source_name
from composer.advisory.feed import Feed
from composer.arch import Arch, get_arch
from composer.errors import InvalidPackage, UserError
from composer.fsutil import source_date_epoch
from composer.limits import load_toml
from composer.package import importer
from composer.package.actions import Actions
from composer.package.archive import read_header
from composer.package.build import default_cache
from composer.package.debian import DebianArchive, DebRef
from composer.package.debimport import DebMetadata
from composer.package.translationreport import render
from composer.repo.advisories import delegate_advisories, set_feed
from composer.repo.edit import add_many, delegate, init, resign_targets
from composer.repo.publishing import publish
from composer.repo.sample import (
    ARCHES,
    IMMUTABLE,
    ROOT_EXPIRES,
    SampleCheckout,
    checkout_of_this_package,
    forget_trusted_state,
)
from composer.repo.store import ONLINE_ROLES, RepoStore
from composer.trust.keys import load_public_key, load_signing_key

# What the server profile imports: an ssh server, python3 and a web server, with their closures (newest
# version of each name across the release's pockets: one version per name keeps the repository small).
SERVER_NAMES = ("openssh-server", "python3", "nginx")
# ... and what vpk (recipes/vpk: the package manager on the device) requires: Debian's python3 and the Python
# libraries the package manager imports, read from the recipe's [relations] (one list, in the recipe).
VPK_RECIPE = Path("recipes") / "vpk" / "recipe.toml"
# ... and what debugging a program live in the guest needs: gdbserver (docs/debugging.md; its closure is libc6,
# libgcc-s1, libstdc++6 and gcc-14-base: 5 packages, 4.8 MiB for x86_64).
DEBUG_NAMES = ("gdbserver",)
SUITES = ("trixie", "trixie-updates", "trixie-security")
ROLE = "debian-developer"
REPORT = "translation-report.md"   # in the packages directory, beside ARCH/import-report.json


def vpk_names(checkout: SampleCheckout) -> tuple[str, ...]:
    """The Debian names recipes/vpk requires (its ``[relations] requires``, versions dropped), sorted."""
    recipe = load_toml((checkout.root / VPK_RECIPE).read_bytes(), str(checkout.root / VPK_RECIPE))
    clauses = recipe.get("relations", {}).get("requires", [])
    return tuple(sorted({c.split("(")[0].split("|")[0].strip() for c in clauses}))


def closure_names(checkout: SampleCheckout) -> tuple[str, ...]:
    """What images/debian imports with its closure: the server profile's names, then vpk's, then the debugging
    tools'."""
    names = (*SERVER_NAMES, *(n for n in vpk_names(checkout) if n not in SERVER_NAMES))
    return (*names, *(n for n in DEBUG_NAMES if n not in names))


def _quiet(line: str) -> None:
    del line


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosureImport:
    """What one architecture's import produced: the ``.vpk`` files and the report (the import summary)."""

    arch: str
    paths: tuple[Path, ...]
    report: dict[str, Any]
    binaries: tuple[Binary, ...] = ()     # with their unpacked trees: the changelogs the advisories come from


def trust_root(checkout: SampleCheckout) -> Path:
    return checkout.root / "profiles" / "trust" / "debian-root.json"


def _create(repo_dir: Path, checkout: SampleCheckout) -> None:
    targets_keys = [load_signing_key(checkout.key("targets"))]
    online = {r: [load_signing_key(checkout.key(r))] for r in ONLINE_ROLES}
    init(repo_dir, root_keys=[load_signing_key(checkout.key("root-1")), load_signing_key(checkout.key("root-2"))],
         root_threshold=2, targets_keys=targets_keys, online=online,
         online_paths={r: [str(checkout.key(r))] for r in online}, architectures=ARCHES, root_expires=ROOT_EXPIRES)
    committed = trust_root(checkout)
    if (repo_dir / "metadata" / "1.root.json").read_bytes() != committed.read_bytes():
        raise UserError(f"{repo_dir}: the new root differs from the committed {committed}",
                        hint="the sample keys or the root expiry changed: regenerate the committed root")
    developer = load_public_key(checkout.keys / "INSECURE-SAMPLE-developer.pub")
    delegate(RepoStore(repo_dir), ROLE, [developer], ["*"], targets_keys=targets_keys)


def publish_advisories(store: RepoStore, feed: Feed, checkout: SampleCheckout) -> None:
    """The import's advisory feed, signed by the sample developer key in the ``advisories`` role (delegated once
    with the sample targets key); new targets and role metadata only: no package changes."""
    developer = load_signing_key(checkout.key("developer"))
    delegate_advisories(store, [developer.public], targets_keys=[load_signing_key(checkout.key("targets"))])
    set_feed(store, feed, [developer])


def import_closure(arch: str, out_dir: Path, *, checkout: SampleCheckout, names: Sequence[str] = (),
                   say: Callable[[str], None] = _quiet) -> ClosureImport:
    """The closure of ``names`` for ``arch`` as signed ``.vpk`` files in ``out_dir`` (existing files of the same
    name are rebuilt: the bytes do not change), with the import summary."""
    a = get_arch(arch)
    names = names or closure_names(checkout)
    key = load_signing_key(checkout.key("developer"))
    archive = DebianArchive(default_cache(), suite=importer.release(SUITES))
    seconds: dict[str, float] = {}
    start = time.monotonic()
    stanzas = importer.suite_stanzas(archive, a, SUITES)
    seconds["parse"] = time.monotonic() - start
    request = importer.Request(names=tuple(names), closure=True, newest_only=True)
    plan = importer.plan(stanzas, request)
    seconds["map"] = time.monotonic() - start - seconds["parse"]
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for i, meta in enumerate(plan.packages, 1):
        built.append(importer.build_with_payload(meta, archive=archive, arch=a, key=key, epoch=source_date_epoch(),
                                                 out_dir=out_dir))
        if i % 20 == 0 or i == len(plan.packages):
            say(f"   {arch}: imported {i}/{len(plan.packages)}")
    seconds["build"] = time.monotonic() - start - seconds["parse"] - seconds["map"]
    report = {"arch": arch, "names": list(names), "suites": list(SUITES), "packages": len(built),
              "bytes": sum(b.size for b in built), "cannot-express": dict(sorted(plan.counts.items())),
              "missing": list(plan.missing), "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "untranslated": {b.name: list(b.untranslated) for b in built if b.untranslated},
              "files": {b.name: b.sha256 for b in built}}
    return ClosureImport(arch=arch, paths=tuple(out_dir / b.name for b in built), report=report,
                         binaries=tuple(imported_binaries(archive, a, plan.packages, stanzas)))


def imported_binaries(archive: DebianArchive, arch: Arch, packages: Sequence[DebMetadata],
                      stanzas: Sequence[Any]) -> list[Binary]:
    """:func:`imported_binary` of each imported package, its Debian fields found among the parsed stanzas."""
    fields = {(s.fields.get("Package"), s.fields.get("Version")): s.fields for s in stanzas}
    return [imported_binary(archive, arch, meta, fields.get((meta.name, meta.upstream_version), {}))
            for meta in packages]


def imported_binary(archive: DebianArchive, arch: Arch, meta: DebMetadata, fields: Mapping[str, str]) -> Binary:
    """The imported package's name, version, Debian source and unpacked tree (both cached by the import)."""
    ref, deb = archive.download(arch, DebRef(name=meta.name, version=meta.upstream_version, arch=meta.source.arch))
    return Binary(name=meta.name, version=meta.upstream_version, source=source_name(fields, meta.name),
                  tree=archive.unpack(deb, ref.sha256))


def build_debian_repo(repo_dir: Path, packages_dir: Path, *, checkout: SampleCheckout | None = None,
                      arches: Sequence[str] = ARCHES, names: Sequence[str] = (),
                      say: Callable[[str], None] = _quiet) -> RepoStore:
    """Import the closure of ``names`` for ``arches`` into ``packages_dir/ARCH`` and publish it in ``repo_dir``
    (created when missing; made again when an import changed a published package); one report per
    architecture in ``packages_dir/ARCH/import-report.json``."""
    checkout = checkout or checkout_of_this_package()
    names = names or closure_names(checkout)
    paths: list[Path] = []
    binaries: list[Binary] = []
    imported: dict[str, list[tuple[str, Actions]]] = {}
    for arch in arches:
        start = time.monotonic()
        done = import_closure(arch, packages_dir / arch, checkout=checkout, names=names, say=say)
        (packages_dir / arch / "import-report.json").write_text(json.dumps(done.report, indent=1, sort_keys=True)
                                                                + "\n")
        paths += done.paths
        binaries += done.binaries
        imported[arch] = [(h.metadata.name, h.metadata.actions) for h in map(read_header, done.paths)]
        say(f"   {arch}: {len(done.paths)} Debian packages ({done.report['bytes'] / 2**20:.1f} MiB) in "
            f"{time.monotonic() - start:.0f} s, {len(done.report['untranslated'])} with untranslated items")
    report = render(imported, title=f"Translation report: the Debian closure of {', '.join(names)}")
    (packages_dir / REPORT).write_text(report)
    say(f"   translation report: {packages_dir / REPORT}")
    feed = debian_feed(binaries)
    say(f"   advisories: {len(feed.advisories)} CVEs named by the changelogs of the imported packages")
    return _publish(repo_dir, paths, checkout, say, feed)


def _publish(repo_dir: Path, paths: Sequence[Path], checkout: SampleCheckout, say: Callable[[str], None],
             feed: Feed) -> RepoStore:
    """Add the imported packages to ``repo_dir`` (created when missing) and publish it; made again from scratch
    when an import changed a published package (a new translation, say: published packages never change)."""
    developer = load_signing_key(checkout.key("developer"))
    if not (repo_dir / "repo.toml").exists():
        _create(repo_dir, checkout)
    store = RepoStore(repo_dir)
    resign_targets(store, targets_keys=[load_signing_key(checkout.key("targets"))], within_days=30)
    try:
        added = add_many(store, sorted(set(paths)), [developer])
    except InvalidPackage as exc:
        if IMMUTABLE not in exc.message:
            raise
        say(f"   the Debian closure changed since {repo_dir} was published: making it again")
        shutil.rmtree(repo_dir)
        forget_trusted_state(repo_dir, checkout)   # (the Debian root has the sample root's bytes: same keys)
        return _publish(repo_dir, paths, checkout, say, feed)
    versions = publish(store)
    publish_advisories(store, feed, checkout)
    say(f"   repository {repo_dir}: {sum(a.new for a in added)} new packages, {versions['packages']} in all, "
        f"{len(feed.advisories)} advisories; "
        f"trust root {trust_root(checkout).relative_to(checkout.root)}")
    return store
