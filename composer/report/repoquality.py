"""A repository directory's packages and their quality metrics (the I/O edge of composer.report.quality: the
``pkg info --repo`` verb and the repository site read the metrics through :func:`quality_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from composer.advisory.match import Package, audit
from composer.advisory.osv import Advisory
from composer.errors import UserError
from composer.fsutil import sha256_file
from composer.package.hardening import hardening_report
from composer.package.lint import lint_header
from composer.package.payloadscan import scan_package
from composer.package.rebuild import RebuildStore
from composer.repo.advisories import read_feed
from composer.repo.index import IndexEntry, close_names
from composer.repo.store import RepoStore
from composer.report.quality import Quality, metrics


def published(repo_dir: Path, name: str, arch: str) -> tuple[IndexEntry, Path]:
    """The newest package ``name`` for ``arch`` (or noarch) stored in the repository directory, and its file."""
    entries = [IndexEntry.from_dict(e) for e in RepoStore(repo_dir).read_state()["packages"].values()]
    mine = [e for e in entries if e.name == name and e.arch in (arch, "noarch")]
    if not mine:
        near = close_names(name, {e.name for e in entries})
        raise UserError(f"{repo_dir}: no package '{name}' for {arch}",
                        hint=(f"did you mean {', '.join(near)}? " if near else "") + "check the name and --arch")
    entry = max(mine, key=lambda e: e.order_key())
    path = repo_dir / "targets" / Path(entry.path).parent / f"{entry.sha256}.{Path(entry.path).name}"
    if not path.is_file():
        raise UserError(f"{repo_dir}: the index lists {entry.nva} but {path} is missing",
                        hint="the repository directory is incomplete: publish it again (vcomp repo publish)")
    return entry, path


def quality_of_file(path: Path, *, feed: Sequence[Advisory] | None, rebuilds: RebuildStore | None) -> Quality:
    """The metrics of the package file ``path``: its lint findings, the hardening score of its ELF files
    (composer.package.hardening), its last recorded rebuild, and the ids of the advisories of ``feed`` that
    cover its version (None: no feed was read)."""
    header, scan = scan_package(path, content=False)
    m = header.metadata
    covered = None if feed is None else [
        f.id for f in audit([Package(name=m.name, version=m.version, scheme=m.version_scheme)], feed)]
    return metrics(header, size=path.stat().st_size, findings=lint_header(header),
                   rebuild=rebuilds.get(sha256_file(path)) if rebuilds is not None else None,
                   hardening=hardening_report(scan.elves).score if scan.elves else None, advisories=covered)


def quality_of(repo_dir: Path, path: Path) -> Quality:
    """The metrics of the package file ``path`` stored in ``repo_dir``, with the repository's own feed and
    rebuild records."""
    return quality_of_file(path, feed=read_feed(RepoStore(repo_dir)).advisories, rebuilds=RebuildStore(repo_dir))
