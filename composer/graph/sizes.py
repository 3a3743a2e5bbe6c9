"""Which packages and which files take an image's space (pure: from the packages' manifests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.graph.svg import Bar, bars, human
from composer.package.manifest import Manifest

TOP_FILES = 25


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageSize:
    name: str
    version: str
    installed_size: int
    files: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSize:
    path: str
    package: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Breakdown:
    title: str
    arch: str
    packages: tuple[PackageSize, ...]     # largest first
    files: tuple[FileSize, ...]           # the TOP_FILES largest

    @property
    def total(self) -> int:
        return sum(p.installed_size for p in self.packages)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "arch": self.arch, "installed_size": self.total,
                "packages": [{"name": p.name, "version": p.version, "installed_size": p.installed_size,
                              "files": p.files} for p in self.packages],
                "largest_files": [{"path": f"/{f.path}", "package": f.package, "size": f.size} for f in self.files]}


def breakdown(title: str, arch: str, manifests: Mapping[tuple[str, str], Manifest],
              top: int = TOP_FILES) -> Breakdown:
    """``manifests``: (name, version) -> the package's manifest."""
    packages = [PackageSize(name=n, version=v, installed_size=m.installed_size,
                            files=sum(1 for e in m.entries if e.type == "file")) for (n, v), m in manifests.items()]
    files = [FileSize(path=e.path, package=n, size=e.size) for (n, _), m in manifests.items()
             for e in m.entries if e.type == "file"]
    return Breakdown(title=title, arch=arch,
                     packages=tuple(sorted(packages, key=lambda p: (-p.installed_size, p.name))),
                     files=tuple(sorted(files, key=lambda f: (-f.size, f.path, f.package))[:top]))


def to_svg(b: Breakdown) -> str:
    """Two bar charts in one SVG: the packages, then the largest files."""
    first = bars(f"{b.title} ({b.arch}): {human(b.total)} installed, by package",
                 [Bar(label=p.name, value=p.installed_size, note=human(p.installed_size)) for p in b.packages])
    second = bars(f"the {len(b.files)} largest files",
                  [Bar(label=f"/{f.path}", value=f.size, note=f"{human(f.size)} ({f.package})") for f in b.files])
    h1 = int(first.split('height="', 1)[1].split('"', 1)[0])
    h2 = int(second.split('height="', 1)[1].split('"', 1)[0])
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{h1 + h2}">',
                      f'<g>{_inner(first)}</g>', f'<g transform="translate(0 {h1})">{_inner(second)}</g>',
                      "</svg>"]) + "\n"


def _inner(svg: str) -> str:
    return svg.split(">", 1)[1].rsplit("</svg>", 1)[0]


def text(b: Breakdown) -> Sequence[str]:
    lines = [f"{b.title} ({b.arch}): {human(b.total)} installed in {len(b.packages)} packages"]
    lines += [f"  {p.installed_size:>12}  {human(p.installed_size):>10}  {p.name} {p.version} ({p.files} files)"
              for p in b.packages]
    lines.append("largest files:")
    lines += [f"  {f.size:>12}  {human(f.size):>10}  /{f.path} ({f.package})" for f in b.files]
    return lines
