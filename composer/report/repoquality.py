"""A repository directory's packages and their quality metrics (the I/O edge of composer.report.quality: the
``pkg info --repo`` verb and the repository site read the metrics through :func:`quality_of`)."""

from __future__ import annotations

from pathlib import Path

from composer.errors import UserError
from composer.fsutil import sha256_file
from composer.package.archive import read_header
from composer.package.lint import lint_header
from composer.package.rebuild import RebuildStore
from composer.repo.index import IndexEntry, close_names
from composer.repo.store import RepoStore
from composer.report.quality import PROVIDERS, Quality, metrics


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


def quality_of(repo_dir: Path, path: Path) -> Quality:
    """The metrics of the package file ``path`` stored in ``repo_dir`` (composer.report.quality)."""
    header = read_header(path)
    return metrics(header, size=path.stat().st_size, findings=lint_header(header),
                   rebuild=RebuildStore(repo_dir).get(sha256_file(path)),
                   hardening=PROVIDERS["hardening"](path, header), advisories=PROVIDERS["advisories"](path, header))
