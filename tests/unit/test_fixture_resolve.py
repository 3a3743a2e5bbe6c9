"""The resolver against apt on real Debian data: the committed trimmed bookworm fixture (design14 §5.3).

The fixture's stanzas are mapped in memory the way the importer maps them (``debimport.map_stanza`` ->
``Metadata`` -> ``IndexEntry``, no signing), resolved with the real resolver, and compared with apt's answer
recorded in expected.json: the same (name, version) set for every request, apt's failure for the two MTAs (the
``mail-transport-agent`` conflict named) and apt's refusal of a virtual name with several providers. The
``essential``-style requests add the base set (``base_requests(index, "essential")``), as apt was given the
Essential names. A remaining difference must be listed in known_differences.toml with its reason.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import zstandard

from composer.package import deb822, debimport
from composer.package.metadata import Metadata
from composer.repo.index import IndexEntry
from composer.solve.pool import SolvIndex
from composer.solve.resolve import Request, ResolveError, Resolver, base_requests
from composer.version import semver_projection
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "data" / "debian-bookworm-amd64"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
KNOWN = tomllib.loads((FIXTURE / "known_differences.toml").read_text())["difference"]


def fixture_entries() -> list[IndexEntry]:
    text = zstandard.ZstdDecompressor().decompress((FIXTURE / "Packages.zst").read_bytes(), max_output_size=1 << 26)
    entries = []
    for stanza in deb822.parse_stanzas(text, "Packages"):
        meta, _ = debimport.map_stanza(stanza)
        assert meta is not None
        doc = meta.to_dict()
        doc["package"]["version"] = str(semver_projection(meta.upstream))   # type: ignore[index]
        entries.append(IndexEntry.from_metadata(Metadata.from_dict(doc), size=0, installed_size=0,
                                                sha256=meta.source.sha256))
    return entries


@pytest.fixture(scope="module")
def entries() -> list[IndexEntry]:
    return fixture_entries()


@pytest.fixture(scope="module")
def resolver(entries: list[IndexEntry]) -> Resolver:
    return Resolver.of(entries, "x86_64")


def requests_of(resolver: Resolver, record: dict[str, Any]) -> list[Request]:
    names = list(record["names"])
    reqs = [Request(name=n) for n in names]
    if record["with-essential"]:
        reqs += [r for r in base_requests(resolver.index, "essential") if r.name not in names]
    return reqs


def solved(resolver: Resolver, record: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c.entry.name, c.entry.version_text) for c in resolver.solve(requests_of(resolver, record))}


def test_the_base_set_is_the_fixtures_essential_names(resolver: Resolver) -> None:
    assert [r.name for r in base_requests(resolver.index, "essential")] == EXPECTED["essential"]
    assert all(str(r.reason) == "essential" for r in base_requests(resolver.index, "essential"))
    required = {r.name for r in base_requests(resolver.index, "required")}
    assert set(EXPECTED["essential"]) < required and base_requests(resolver.index, "none") == []


SOLVABLE = sorted(label for label, r in EXPECTED["requests"].items() if r["exit"] == 0)


@pytest.mark.parametrize("label", SOLVABLE)
def test_same_packages_and_versions_as_apt(resolver: Resolver, label: str) -> None:
    record = EXPECTED["requests"][label]
    apt = {(i["name"], i["version"]) for i in record["installed"]}
    ours = solved(resolver, record)
    differing = {n for n, _ in ours ^ apt}
    known = {k["package"] for k in KNOWN if k["request"] == label}
    assert differing - known == set(), (f"{label}: only ours {sorted(ours - apt)}, only apt {sorted(apt - ours)}; "
                                        "list an accepted difference in known_differences.toml with its reason")
    assert known - differing == set(), f"{label}: known differences that no longer differ: {sorted(known - differing)}"


def test_two_mtas_fail_as_apt_fails_naming_the_conflict(resolver: Resolver) -> None:
    record = EXPECTED["requests"]["two-mtas"]
    assert record["exit"] != 0
    with pytest.raises(ResolveError) as info:
        solved(resolver, record)
    msg = info.value.message
    assert "conflicts with mail-transport-agent" in msg, msg
    assert "postfix 3.7.11-0+deb12u1" in msg and "exim4-daemon-light 4.96-15+deb12u10" in msg, msg


def test_a_virtual_name_with_several_providers_is_refused_listing_them(resolver: Resolver) -> None:
    record = EXPECTED["requests"]["mail-transport-agent"]
    with pytest.raises(ResolveError) as info:
        solved(resolver, record)
    msg = info.value.message
    assert "is a virtual package provided by" in msg
    assert all(p in msg for p in record["providers"]), msg


def test_a_pool_from_the_cache_answers_the_same(entries: list[IndexEntry], resolver: Resolver,
                                                tmp_path: Path) -> None:
    SolvIndex.cached(tmp_path, "x86_64", [("debian", "d", lambda: entries)])
    loaded = Resolver(SolvIndex.cached(tmp_path, "x86_64", [("debian", "d", lambda: [])]))
    for label in ("desktop-essential", "database", "ssh-server"):
        record = EXPECTED["requests"][label]
        assert solved(loaded, record) == solved(resolver, record) == {
            (i["name"], i["version"]) for i in record["installed"]}
    with pytest.raises(ResolveError, match="conflicts with mail-transport-agent"):
        solved(loaded, EXPECTED["requests"]["two-mtas"])


def test_every_chosen_package_has_a_reason_along_relations(resolver: Resolver) -> None:
    record = EXPECTED["requests"]["desktop"]
    chosen = resolver.solve(requests_of(resolver, record))
    reasons = {c.entry.name: c.reason for c in chosen}
    assert str(reasons["xfce4"]) == "requested"
    assert all(r.kind in ("requested", "dependency") and (r.kind == "requested" or r.subject in reasons)
               for r in reasons.values()), {n: str(r) for n, r in reasons.items() if r.subject not in reasons}
