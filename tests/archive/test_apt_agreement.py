"""Our resolver against apt on the whole real archive (marker ``archive``; ``make test-archive``; design14 §5).

bookworm main + bookworm-updates + bookworm-security (amd64 and all) are read from DebianArchive's private
apt state (network on the first run), every stanza is mapped in memory through the importer
(``debimport.map_stanza`` -> Metadata -> IndexEntry) into one resolver, and each request of design14 §5.2
is answered by our resolver and by ``apt-get -s install --no-install-recommends`` on the same lists with an
empty status. Every difference of (name, version) sets must be an entry of known_differences.toml.

- ``test_agrees_with_apt``: the table (request, ours, apt, differences, lock time, apt time), printed;
- ``test_security_updates_win``: for every name in bookworm-security, our newest version is never older than
  the security one, and a request for the name locks the newest version;
- ``test_dpkg_order_on_the_whole_index``: every same-name version pair and every versioned relation against
  every version of its target: our order key, the EVR given to libsolv and libsolv itself against
  ``composer.version.dpkg_compare``, and a sample of those pairs against the dpkg CLI.

The harness is tests/support/aptagree.py (shared with ``bench/resolve.py --archive``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from composer import settings
from composer.errors import UserError
from composer.package import debfixture
from composer.package.aptsim import AptSimulator
from composer.package.debian import DebianArchive
from composer.solve.resolve import Request, Resolver, base_requests
from composer.version import dpkg_compare
from tests.support import aptagree as ag

pytestmark = pytest.mark.archive

DPKG_CLI_SAMPLE = 3000


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    archive: DebianArchive
    suites: ag.Suites
    entries: ag.Entries
    essential: tuple[str, ...]
    resolver: Resolver
    build_seconds: float


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    archive = DebianArchive(settings.cache_dir(), suite=ag.RELEASE)
    suites = ag.read_suites(ag.suite_packages(archive))
    entries = ag.entries_of(suites.stanzas)
    t = time.perf_counter()
    resolver = Resolver.of(entries.entries, ag.ARCH.name, origin="debian")
    yield World(archive=archive, suites=suites, entries=entries, essential=ag.essential_names(suites.stanzas),
                resolver=resolver, build_seconds=time.perf_counter() - t)


def test_agrees_with_apt(world: World) -> None:
    # the base set the profile key `base: essential` adds is the Essential names apt is given
    assert tuple(r.name for r in base_requests(world.resolver.index, "essential")) == world.essential
    sim = AptSimulator.for_archive(world.archive, ag.ARCH)
    sim.install(("bash",))  # warm-up: apt builds its pkgcache.bin once, not inside the first request's time
    known = ag.read_known()
    rows = [ag.row(r.label, ag.ours(world.resolver, r, world.essential), ag.apts(sim, r, world.essential), known)
            for r in debfixture.REQUESTS]
    print(f"\n{sum(world.suites.counts.values())} stanzas ({dict(world.suites.counts)}), "
          f"{len(world.entries.entries)} entries mapped in {world.entries.seconds:.1f} s, "
          f"pool built in {world.build_seconds:.1f} s\n")
    print(ag.table(rows))
    stale = ag.unused(known, rows)
    if stale:
        print("\nknown differences this run did not need (remove them?):\n"
              + "\n".join(f"- {k.request} {k.package}" for k in stale))
    unexplained = [f"{r.label}: {d}" for r in rows for d in r.unexplained]
    assert not unexplained, f"{len(unexplained)} differences with apt not in known_differences.toml:\n" + \
        "\n".join(unexplained[:40])


def test_security_updates_win(world: World) -> None:
    security = ag.security_versions(world.suites)
    newest = ag.newest_versions(world.entries.entries)
    older = {n: (newest.get(n), v) for n, v in security.items() if newest.get(n) is None
             or dpkg_compare(newest[n], v) < 0}
    assert not older, f"our newest version is older than bookworm-security's for {len(older)} names: " \
        f"{sorted(older.items())[:10]}"
    picked_security = later_in_main = refused = stuck = 0
    wrong = []
    for name, version in sorted(security.items()):
        try:
            chosen = {c.entry.name: c.entry.version_text for c in world.resolver.solve([Request(name=name)])}
        except UserError:
            refused += 1    # not installable alone (a conflict, a missing dependency): nothing to pick
            continue
        if chosen.get(name) != newest[name] and not _installable(world.resolver, name, newest[name]):
            stuck += 1      # the newest build cannot be installed (apt fails there: it never falls back)
        elif chosen.get(name) != newest[name]:
            wrong.append(f"{name}: locked {chosen.get(name) or 'a provider, not the package'}, newest "
                         f"{newest[name]} (security {version})")
        elif newest[name] == version:
            picked_security += 1
        else:
            later_in_main += 1   # a point release folded the fix in with a newer revision (+deb12u2 > +deb12u1)
    print(f"\n{len(security)} names in {ag.SECURITY}: the security version locked for {picked_security}, a newer "
          f"point-release version for {later_in_main}, not installable alone {refused}, an older build because the "
          f"newest cannot be installed {stuck}")
    assert not wrong, f"{len(wrong)} names not locked at their newest version:\n" + "\n".join(wrong[:20])


def _installable(resolver: Resolver, name: str, version: str) -> bool:
    """Whether that exact build can be installed at all (libsolv on the resolver's pool, one install job)."""
    import solv

    pool, index = resolver.pool, resolver.index
    sids = [s.id for s in index.named(name) if index.entry(s.id).version_text == version]
    return any(not pool.Solver().solve([pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE, sid)])
               for sid in sids)


def test_dpkg_order_on_the_whole_index(world: World) -> None:
    same, relations = ag.order_pairs(world.suites.stanzas)
    pairs = same + relations
    assert not ag.order_mismatches(pairs)
    assert not ag.libsolv_mismatches(pairs)
    checked, bad = ag.dpkg_cli_mismatches(pairs, DPKG_CLI_SAMPLE)
    print(f"\n{len(same)} same-name pairs, {len(relations)} relation/target pairs: 0 mismatches (order key, EVR, "
          f"libsolv); dpkg --compare-versions on {checked} of them: {len(bad)} mismatches")
    assert not bad, bad[:10]
