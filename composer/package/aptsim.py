"""apt's own answer to an install request, as the yardstick of the resolver (design14 §5.1).

``apt-get -s install --no-install-recommends NAME...`` runs with a private state and an EMPTY status, on
either the private apt state of :class:`composer.package.debian.DebianArchive` (its options, reused) or a
local Packages file served as ``deb [trusted=yes] file:DIR ./`` with a generated Release (no network: the
committed fixture's answers are recorded this way). The output is parsed into an :class:`AptAnswer`: the
``Inst NAME (VERSION SUITE [ARCH])`` lines, or apt's failure message.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from composer.arch import Arch
from composer.errors import ToolError, UserError
from composer.package.debian import DebianArchive
from composer.run import run


# Added to DebianArchive's options: keep the host's extended_states and apt.conf.d out (design14 §5.1).
# Slice D adds the first two to DebianArchive._opts itself; repeating an option is harmless (the last wins).
def _extra_opts(root: Path) -> list[str]:
    return ["-o", f"Dir::State={root}", "-o", f"Dir::Etc::Parts={root}/etc",
            "-o", "APT::Get::List-Cleanup=0",
            "-o", "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"]


SIMULATE_OPTS: tuple[str, ...] = ("-s", "-o", "APT::Install-Recommends=false",
                                  "-o", "APT::Install-Suggests=false")
APT_ENV = {"LC_ALL": "C.UTF-8", "LANGUAGE": ""}   # apt's messages are parsed: English, whatever the host says
EXIT_NO_SOLUTION = 100
TIMEOUT = 900.0

_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) (?:.*? )?\[([^\]]+)\]\)")
_PROGRESS = ("Reading package lists", "Building dependency tree", "Reading state information")


@dataclass(frozen=True, slots=True, kw_only=True)
class AptInstall:
    """One ``Inst`` line."""

    name: str
    version: str       # Debian text, verbatim (1:2.36-9+deb12u7)
    arch: str          # Debian architecture (amd64, all)


@dataclass(frozen=True, slots=True, kw_only=True)
class AptAnswer:
    """What apt would install for ``request``, or why it cannot."""

    request: tuple[str, ...]
    exit_code: int
    installed: tuple[AptInstall, ...] = ()     # sorted by name; empty when apt fails
    message: str = ""                          # apt's explanation when it fails (progress lines removed)
    providers: tuple[str, ...] = ()            # "is a virtual package provided by:" names, when apt says so

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def versions(self) -> dict[str, str]:
        return {i.name: i.version for i in self.installed}


def parse_simulation(request: tuple[str, ...], exit_code: int, output: str) -> AptAnswer:
    """Read ``apt-get -s install`` output (stdout and stderr) into an answer."""
    lines = output.splitlines()
    installed = []
    for line in lines:
        m = _INST.match(line)
        if m:
            installed.append(AptInstall(name=m.group(1), version=m.group(2), arch=m.group(3)))
    providers: list[str] = []
    in_providers = False
    for line in lines:
        if "is a virtual package provided by:" in line:
            in_providers = True
        elif in_providers and line.startswith("  ") and line.strip():
            providers.append(line.split()[0])
        else:
            in_providers = False
    if exit_code == 0:
        return AptAnswer(request=request, exit_code=0, installed=tuple(sorted(installed, key=lambda i: i.name)),
                         providers=tuple(providers))
    message = "\n".join(line.rstrip() for line in lines
                        if line.strip() and not line.startswith(_PROGRESS) and not line.startswith(("Inst ", "Conf ")))
    return AptAnswer(request=request, exit_code=exit_code, message=message, providers=tuple(providers))


def release_text(packages: bytes, *, suite: str = "fixture", date: str = "Thu, 01 Jan 1970 00:00:00 UTC") -> str:
    """A flat repository's Release naming the one uncompressed Packages file (apt checks its size and hash)."""
    return (f"Origin: vcomp\nLabel: vcomp fixture\nSuite: {suite}\nCodename: {suite}\nDate: {date}\n"
            f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")


class AptSimulator:
    """``apt-get -s install`` against one private apt root."""

    def __init__(self, *, opts: list[str], arch: Arch) -> None:
        self._opts = opts
        self.arch = arch

    @classmethod
    def for_archive(cls, archive: DebianArchive, arch: Arch) -> AptSimulator:
        """Debian's network archive through DebianArchive's private state (updated first)."""
        archive.update(arch)
        root = archive._root(arch)
        return cls(opts=[*archive._opts(arch), *_extra_opts(root)], arch=arch)

    @classmethod
    def for_packages(cls, packages: bytes, workdir: Path, arch: Arch) -> AptSimulator:
        """A local Packages file (uncompressed bytes) as ``deb [trusted=yes] file:DIR ./``; runs apt-get update.

        ``workdir`` is owned by the simulator (emptied first); the same private layout as DebianArchive's.
        """
        if workdir.exists():
            shutil.rmtree(workdir)
        repo = workdir / "repo"
        repo.mkdir(parents=True)
        (repo / "Packages").write_bytes(packages)
        (repo / "Release").write_text(release_text(packages))
        archive = DebianArchive(workdir)
        root = archive._root(arch)
        for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d", "etc"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "status").write_bytes(b"")
        (root / "sources.list").write_text(f"deb [trusted=yes] file:{repo.resolve()} ./\n")
        sim = cls(opts=[*archive._opts(arch), *_extra_opts(root)], arch=arch)
        try:
            run(["apt-get", *sim._opts, "update"], env=APT_ENV, timeout=TIMEOUT)
        except ToolError as exc:
            raise ToolError(f"apt-get update on the local Packages file {repo / 'Packages'} failed: {exc.message}",
                            hint="check that the file is a Debian Packages index") from None
        return sim

    def install(self, names: tuple[str, ...]) -> AptAnswer:
        """What ``apt-get -s install --no-install-recommends NAMES`` answers (exit 100 = no solution)."""
        if not names:
            raise UserError("apt simulation: no package names to install", hint="give at least one name")
        result = run(["apt-get", *self._opts, *SIMULATE_OPTS, "install", "--no-install-recommends", "--", *names],
                     env=APT_ENV, check=False, timeout=TIMEOUT)
        output = (result.stdout + b"\n" + result.stderr).decode(errors="replace")
        if result.returncode not in (0, EXIT_NO_SOLUTION):
            tail = "\n    ".join(output.strip().splitlines()[-8:])
            raise ToolError(f"apt-get -s install {' '.join(names[:3])} exited {result.returncode}:\n    {tail}",
                            hint="run it again with --debug to see the whole command")
        return parse_simulation(names, result.returncode, output)

    def command(self, names: tuple[str, ...]) -> list[str]:
        """The exact command line :meth:`install` runs (for documentation and reports)."""
        return ["apt-get", *self._opts, *SIMULATE_OPTS, "install", "--no-install-recommends", "--", *names]
