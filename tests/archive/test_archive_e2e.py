"""The real archive through the product, end to end (marker ``archive``; ``make test-archive-e2e``; issue 14).

What a user runs, as a user runs it (the ``vcomp`` CLI in a subprocess, timed):

1. throwaway keys (``vcomp key generate``), a repository (``vcomp repo init``, ``vcomp repo delegate``), then
   ``vcomp import debian --suite bookworm --suite bookworm-updates --suite bookworm-security --arch x86_64 --all
   --metadata-only --key K --out DIR --repo REPO --report R``: every stanza a signed metadata-only .vpk, added
   and published (about 9 minutes here);
2. for each request of design14 §5.2 (``debfixture.REQUESTS``) a profile written by the test (``base: none``,
   ``base: essential`` for the rows with the base set; the repository with its pinned root) locked with
   ``vcomp lock`` on an empty cache (cold), checked with ``vcomp lock --check``, locked again (byte-identical),
   and locked again from scratch on the warm cache (byte-identical);
3. the lock's (name, version) set against ``apt-get -s install`` on the same suites (tests/support/aptagree.py):
   equal, or each difference listed in tests/archive/known_differences.toml. The lock's versions are the Debian
   text forms (version-scheme ``deb``, a Version of a stanza of that name); two-mtas fails with one error that
   names the conflict with the Debian versions.

To iterate quickly, a repository prepared by an earlier import is reused (read by this test only):

- ``VCOMP_E2E_PREPARED=DIR``: ``DIR/repo`` is a published repository of the import (``DIR/report.json`` its
  ``--report``, printed when present); the import step is skipped;
- ``VCOMP_E2E_PACKAGES=FILE``: the Packages file that repository was imported from (``--packages``); apt then
  answers from that file alone (``AptSimulator.for_packages``) instead of the three suites, e.g.
  ``VCOMP_E2E_PREPARED=/work/cache14-import/full VCOMP_E2E_PACKAGES=/work/scratch14/Packages`` (bookworm main
  only).

Run with ``-s`` to see the figures (import per phase, lock times, apt times, the agreement table).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from composer import settings
from composer.package import debfixture
from composer.package.aptsim import AptSimulator
from composer.package.deb822 import Stanza
from composer.package.debian import DebianArchive
from composer.run import Result, run
from composer.version import dpkg_compare
from tests.support import aptagree as ag

pytestmark = pytest.mark.archive

PREPARED = os.environ.get("VCOMP_E2E_PREPARED")
PREPARED_PACKAGES = os.environ.get("VCOMP_E2E_PACKAGES")
VCOMP = (sys.executable, "-m", "composer")
HOUR = 3600.0
ROLES = ("root", "targets", "index", "snapshot", "timestamp", "debian")


def vcomp(*args: str | Path, cache: Path | None = None, check: bool = True) -> tuple[Result, float]:
    """``vcomp ARGS`` as a user runs it (its own cache when given): the result and the wall time."""
    t = time.perf_counter()
    result = run([*VCOMP, *args], env={"VCOMP_CACHE": str(cache)} if cache else None, check=check, timeout=HOUR)
    return result, time.perf_counter() - t


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    repo: Path
    report: Mapping[str, object]      # the import's --report ({} for a prepared repository without one)
    import_seconds: float             # wall time of `vcomp import` (0 when prepared)
    suites: str                       # what both sides answer from, for the table
    stanzas: tuple[Stanza, ...]       # the stanzas apt answers from
    essential: tuple[str, ...]
    sim: AptSimulator
    work: Path


def _import(base: Path) -> tuple[Path, dict[str, object], float]:
    """Keys, a repository and the metadata-only import of the three suites, all through the CLI."""
    keys, repo = base / "keys", base / "repo"
    for role in ROLES:
        vcomp("key", "generate", role, "--dir", keys)
    vcomp("repo", "init", repo, "--root-key", keys / "root.key", "--targets-key", keys / "targets.key",
          "--index-key", keys / "index.key", "--snapshot-key", keys / "snapshot.key",
          "--timestamp-key", keys / "timestamp.key", "--arch", "x86_64")
    vcomp("repo", "delegate", repo, "debian", "--key", keys / "debian.pub", "--packages", "*",
          "--targets-key", keys / "targets.key")
    report = base / "report.json"
    _, took = vcomp("import", "debian", *(a for s in ag.SUITES for a in ("--suite", s)), "--arch", "x86_64",
                    "--all", "--metadata-only", "--key", keys / "debian.key", "--out", base / "out",
                    "--repo", repo, "--report", report, "--json", cache=settings.cache_dir())
    return repo, json.loads(report.read_text()), took


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("e2e")
    if PREPARED:
        prepared = Path(PREPARED)
        report_file = prepared / "report.json"
        repo, took = prepared / "repo", 0.0
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
    else:
        repo, report, took = _import(work / "import")
    if PREPARED_PACKAGES:
        data = Path(PREPARED_PACKAGES).read_bytes()
        stanzas = ag.read_suites({"packages": data}).stanzas
        sim = AptSimulator.for_packages(data, work / "apt", ag.ARCH)
        suites = f"{PREPARED_PACKAGES} alone"
    else:
        archive = DebianArchive(settings.cache_dir(), suite=ag.RELEASE)
        stanzas = ag.read_suites(ag.suite_packages(archive)).stanzas
        sim = AptSimulator.for_archive(archive, ag.ARCH)
        suites = " + ".join(ag.SUITES)
    sim.install(("bash",))  # warm-up: apt builds its pkgcache.bin once, not inside the first request's time
    yield World(repo=repo, report=report, import_seconds=took, suites=suites, stanzas=stanzas,
                essential=ag.essential_names(stanzas), sim=sim, work=work)


def profile_text(request: debfixture.Request, repo: Path) -> str:
    """The profile of one request: the repository with its pinned root, ``base: essential`` for the rows with
    the base set, else ``base: none``."""
    packages = ", ".join(request.names)
    return (f"name: {request.label}\narchitectures: [{ag.ARCH.name}]\n"
            f"base: {'essential' if request.with_essential else 'none'}\n"
            f"repositories:\n  - {{name: debian, url: '{repo}', root: root.json}}\n"
            f"packages: [{packages}]\noutputs:\n  - type: rootfs\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Locked:
    label: str
    outcome: ag.Outcome
    rows: tuple[Mapping[str, object], ...]   # the lock's rows ([] when the lock failed)
    exit: int
    stderr: str
    cold: float
    check: float = 0.0
    relock: float = 0.0
    warm: float = 0.0
    identical: bool = True                   # the relock and the warm lock wrote the same bytes


def lock(world: World, request: debfixture.Request) -> Locked:
    """Cold lock, --check, relock, warm lock from scratch: the outcome and the times."""
    d = world.work / "profiles" / request.label
    d.mkdir(parents=True)
    shutil.copyfile(world.repo / "metadata" / "root.json", d / "root.json")
    profile, lock_file, cache = d / "profile.yaml", d / "profile.lock", d / "cache"
    profile.write_text(profile_text(request, world.repo))
    result, cold = vcomp("lock", profile, cache=cache, check=False)
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        again, warm = vcomp("lock", profile, cache=cache, check=False)   # the same refusal from the warm cache
        outcome = ag.Outcome(ok=False, message=stderr, seconds=cold)
        return Locked(label=request.label, outcome=outcome, rows=(), exit=result.returncode, stderr=stderr,
                      cold=cold, warm=warm, identical=again.stderr == result.stderr)
    first = lock_file.read_bytes()
    _, check = vcomp("lock", "--check", profile, cache=cache)
    _, relock = vcomp("lock", profile, cache=cache)
    identical = lock_file.read_bytes() == first
    lock_file.unlink()
    _, warm = vcomp("lock", profile, cache=cache)
    identical = identical and lock_file.read_bytes() == first
    rows = tuple(json.loads(first)["architectures"][ag.ARCH.name])
    outcome = ag.Outcome(ok=True, packages={str(r["name"]): str(r["version"]) for r in rows}, seconds=cold)
    return Locked(label=request.label, outcome=outcome, rows=rows, exit=0, stderr=stderr, cold=cold, check=check,
                  relock=relock, warm=warm, identical=identical)


def newest(stanzas: Sequence[Stanza], name: str) -> str:
    versions = [s.fields["Version"] for s in stanzas if s.fields["Package"] == name]
    return max(versions, key=functools.cmp_to_key(dpkg_compare))


def _import_figures(world: World) -> str:
    if not world.report:
        return f"import: prepared repository {world.repo} (no report.json)"
    r = world.report
    return (f"import: {r.get('packages')} packages of {r.get('stanzas')} stanzas in {world.import_seconds:.0f} s "
            f"wall ({'prepared' if PREPARED else 'this run'}); seconds per phase {r.get('seconds')}; "
            f"ms per package {r.get('ms-per-package')} {r.get('ms-per-package-by-phase')}")


def test_the_archive_through_the_product(world: World) -> None:
    known = ag.read_known()
    locked, rows = [], []
    for request in debfixture.REQUESTS:
        ours = lock(world, request)
        apt = ag.apts(world.sim, request, world.essential)
        locked.append(ours)
        rows.append(ag.row(request.label, ours.outcome, apt, known))
    print(f"\n{_import_figures(world)}\nanswers from: {world.suites}; {len(world.stanzas)} stanzas\n")
    print(ag.table(rows))
    print("\n| request | cold lock s | lock --check s | relock s | warm lock s | apt s |\n"
          "|---|---:|---:|---:|---:|---:|")
    for ours, r in zip(locked, rows, strict=True):
        print(f"| {ours.label} | {ours.cold:.2f} | {ours.check:.2f} | {ours.relock:.2f} | {ours.warm:.2f} "
              f"| {r.apt.seconds:.2f} |")

    problems = [f"{r.label}: {d}" for r in rows for d in r.unexplained]
    # the lock's versions are the Debian text forms, each a Version of a stanza of that name
    texts = {(s.fields["Package"], s.fields["Version"]) for s in world.stanzas}
    for ours in locked:
        problems += [f"{ours.label}: {row['name']} {row['version']} is not a Debian version of it "
                     f"(scheme {row.get('version-scheme', 'semver')})" for row in ours.rows
                     if row.get("version-scheme") != "deb" or (row["name"], row["version"]) not in texts]
        if not ours.identical:
            problems.append(f"{ours.label}: a second `vcomp lock` changed the lock (or the refusal)")
    # two-mtas: refused, with one error naming the conflict and both packages in their Debian versions
    two = next(o for o in locked if o.label == "two-mtas")
    errors = [line for line in two.stderr.splitlines() if line.startswith("error:")]
    wanted = [f"postfix {newest(world.stanzas, 'postfix')}",
              f"exim4-daemon-light {newest(world.stanzas, 'exim4-daemon-light')}", "mail-transport-agent"]
    if two.exit == 0 or len(errors) != 1 or any(w not in two.stderr for w in wanted):
        problems.append(f"two-mtas: exit {two.exit}, want one error naming {wanted}:\n{two.stderr}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])
