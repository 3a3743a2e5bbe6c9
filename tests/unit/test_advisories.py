"""Advisories: OSV parsing against schemas/osv.schema.json, version ranges, changelog CVE extraction (hostile
input included), the feed, the signed role in a real repository read back through the TUF client, and the CLI."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from composer.advisory import changelog, feed, match, osv
from composer.advisory.client import client_feed
from composer.cli.main import main
from composer.errors import ComposerError, InvalidPackage, UserError, VerificationError
from composer.repo.advisories import add_advisories, delegate_advisories, read_feed
from composer.repo.client import RepositoryClient
from composer.repo.edit import init
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey, generate, load_signing_key

ONLINE = ("index", "snapshot", "timestamp")


def osv_doc(id_: str = "VER-2026-0001", *, name: str = "nginx", fixed: str = "1.26.3-3+deb13u12",
            ecosystem: str = "Debian:13", severity: str = "critical", **extra: Any) -> dict[str, Any]:
    return {"schema_version": "1.6.0", "id": id_, "modified": "2026-12-01T00:00:00Z", "summary": f"{name} flaw",
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
            "database_specific": {"severity": severity}, **extra}


def parse(doc: dict[str, Any]) -> osv.Advisory:
    return osv.parse_advisory(json.dumps(doc).encode(), "test.json")


# ---------------------------------------------------------------- OSV

def test_an_osv_document_is_parsed_and_kept_canonical() -> None:
    a = parse(osv_doc(aliases=["CVE-2026-1"], references=[{"type": "WEB", "url": "https://example.org/x"}]))
    assert (a.id, a.severity, a.aliases) == ("VER-2026-0001", "critical", ("CVE-2026-1",))
    assert a.affected[0].fixed == ("1.26.3-3+deb13u12",)
    assert a.to_dict()["references"][0]["type"] == "WEB"
    assert parse(a.to_dict()).source == a.source


@pytest.mark.parametrize(("change", "message"), [
    ({"id": "not an id!"}, "$.id"),
    ({"modified": "yesterday"}, "$.modified"),
    ({"affected": [{"package": {"ecosystem": "Debian:13"}}]}, "missing required field 'name'"),
    ({"affected": [{"package": {"ecosystem": "x", "name": "y"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}]}]}, "$.affected[0].ranges[0]"),
    ({"affected": [{"package": {"ecosystem": "x", "name": "y"},
                    "ranges": [{"type": "BOGUS", "events": [{"introduced": "0"}]}]}]}, "BOGUS"),
    ({"database_specific": {"severity": "apocalyptic"}}, "$.database_specific.severity"),
    ({"summary": "x" * 1001}, "$.summary"),
])
def test_invalid_osv_is_one_error_naming_the_json_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as exc:
        parse({**osv_doc(), **change})
    assert message in str(exc.value) and "\n" not in exc.value.message.split(":", 1)[0]


def test_all_schema_errors_are_reported_at_once() -> None:
    with pytest.raises(UserError) as exc:
        parse({**osv_doc(), "id": "bad id", "modified": "never"})
    assert "$.id" in str(exc.value) and "$.modified" in str(exc.value)


@pytest.mark.parametrize("data", [b"x" * (osv.MAX_ADVISORY_BYTES + 1), b"[" * 10_000 + b"]" * 10_000, b"{not json",
                                  b"[]"])
def test_hostile_advisory_files_are_refused_with_one_line(data: bytes) -> None:
    with pytest.raises(UserError) as exc:
        osv.parse_advisory(data, "evil.json")
    assert str(exc.value).startswith("evil.json")


def test_severity_levels_and_aliases() -> None:
    assert parse(osv_doc(severity="MODERATE")).severity == "medium"
    doc = osv_doc()
    del doc["database_specific"]
    assert parse(doc).severity == "unknown"
    assert osv.parse_severity("High", "--severity") == "high"
    with pytest.raises(UserError, match="unknown severity 'urgent'"):
        osv.parse_severity("urgent", "--severity")


# ---------------------------------------------------------------- ranges

@pytest.mark.parametrize(("events", "version", "affected"), [
    ([{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}], "1:9.2p1-2+deb12u2", True),
    ([{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}], "1:9.2p1-2+deb12u3", False),
    ([{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}], "9.9-1", True),           # no epoch: older
    ([{"introduced": "1.2-1"}, {"fixed": "1.4-1"}], "1.1-9", False),
    ([{"introduced": "1.2-1"}, {"fixed": "1.4-1"}], "1.3~rc1-1", True),
    ([{"introduced": "1.2-1"}, {"fixed": "1.4-1"}], "1.4~rc1-1", True),                 # ~ sorts before
    ([{"introduced": "0"}, {"last_affected": "2.0-1"}], "2.0-1", True),
    ([{"introduced": "0"}, {"last_affected": "2.0-1"}], "2.0-1+b1", False),
    ([{"introduced": "0"}, {"fixed": "1.0-1"}, {"introduced": "2.0-1"}, {"fixed": "2.1-1"}], "1.5-1", False),
    ([{"introduced": "0"}, {"fixed": "1.0-1"}, {"introduced": "2.0-1"}, {"fixed": "2.1-1"}], "2.0.5-1", True),
])
def test_osv_ranges_in_dpkg_order(events: list[dict[str, str]], version: str, affected: bool) -> None:
    evs = tuple(osv.Event(introduced=e.get("introduced", ""), fixed=e.get("fixed", ""),
                          last_affected=e.get("last_affected", "")) for e in events)
    assert match.in_range(evs, version, "deb") is affected


def test_semver_ranges_and_ecosystems() -> None:
    a = parse(osv_doc(name="hello", fixed="1.2.0", ecosystem="Veridian"))
    assert match.audit([match.Package(name="hello", version="1.1.9")], [a])
    assert not match.audit([match.Package(name="hello", version="1.2.0")], [a])
    assert not match.audit([match.Package(name="hello", version="1.10.0")], [a])
    debian = parse(osv_doc(name="hello", fixed="1.2.0"))
    assert not match.audit([match.Package(name="hello", version="1.1.9")], [debian])   # Debian: deb versions only
    pypi = parse(osv_doc(name="hello", fixed="1.2.0", ecosystem="PyPI"))
    assert not match.audit([match.Package(name="hello", version="1.0-1", scheme="deb")], [pypi])


def test_findings_name_the_fix_and_sort_by_severity() -> None:
    low = parse(osv_doc("VER-1", severity="low"))
    crit = parse(osv_doc("VER-2", fixed="1.26.3-3+deb13u13"))
    withdrawn = parse(osv_doc("VER-3", withdrawn="2026-12-02T00:00:00Z"))
    pkg = match.Package(name="nginx", version="1.26.3-3+deb13u11", scheme="deb", arch="x86_64")
    found = match.audit([pkg], [low, crit, withdrawn])
    assert [(f.advisory.id, f.fixed) for f in found] == [("VER-2", ("1.26.3-3+deb13u13",)),
                                                         ("VER-1", ("1.26.3-3+deb13u12",))]
    assert [f.advisory.id for f in match.at_or_above(found, "high")] == ["VER-2"]
    assert len(match.at_or_above(found, "unknown")) == 2


# ---------------------------------------------------------------- changelog

CHANGELOG = """\
openssh (1:10.0p1-7+deb13u1) trixie-security; urgency=high

  * Fix CVE-2026-35386: a flaw (and a follow-up to CVE-2025-26465).

 -- Colin Watson <cjwatson@debian.org>  Sat, 02 May 2026 12:00:00 +0100

openssh (1:10.0p1-5) unstable; urgency=medium

  * Fix CVE-2025-26465 and CVE-2025-26466 (closes: #1)
  * Not a CVE-12-3 id.

 -- Colin Watson <cjwatson@debian.org>  Tue, 18 Feb 2025 10:00:00 +0000
"""


def test_changelog_entries_and_first_fixes() -> None:
    log = changelog.parse(CHANGELOG.encode())
    assert [(e.version, e.urgency, e.date) for e in log.entries] == [
        ("1:10.0p1-7+deb13u1", "high", "2026-05-02T11:00:00Z"), ("1:10.0p1-5", "medium", "2025-02-18T10:00:00Z")]
    fixes = changelog.first_fixes(log)
    assert {c: e.version for c, (e, _) in fixes.items()} == {
        "CVE-2026-35386": "1:10.0p1-7+deb13u1", "CVE-2025-26465": "1:10.0p1-5", "CVE-2025-26466": "1:10.0p1-5"}


def test_changelog_advisories_cover_every_older_version_of_each_binary() -> None:
    source = changelog.Source(name="openssh", changelog=changelog.parse(CHANGELOG.encode()),
                              binaries=(("openssh-client", "1:10.0p1-7+deb13u1"),
                                        ("openssh-server", "1:10.0p1-7+deb13u1"), ("ssh-odd", "0.1-1")))
    advisories = changelog.derive([source])
    assert [a.id for a in advisories] == ["DEBIAN-CVE-2025-26465", "DEBIAN-CVE-2025-26466", "DEBIAN-CVE-2026-35386"]
    a = advisories[0]
    assert a.aliases == ("CVE-2025-26465",) and a.severity == "unknown"
    assert sorted(x.name for x in a.affected) == ["openssh-client", "openssh-server"]   # ssh-odd: versioned apart
    assert a.to_dict()["affected"][0]["database_specific"]["urgency"] == "medium"
    old = match.Package(name="openssh-server", version="1:9.2p1-2+deb12u3", scheme="deb")
    new = match.Package(name="openssh-server", version="1:10.0p1-7+deb13u1", scheme="deb")
    assert len(match.audit([old], advisories)) == 3 and not match.audit([new], advisories)


def test_a_huge_changelog_is_cut_not_inflated() -> None:
    entry = CHANGELOG.split("\n\n", 2)[0] + "\n\n  * CVE-2026-0001\n\n -- A <a@b>  Sat, 02 May 2026 12:00:00 +0100\n\n"
    bomb = gzip.compress((entry * 2) .encode() + b"\0" * (64 << 20), compresslevel=9)
    assert len(bomb) < changelog.MAX_COMPRESSED
    text, truncated = changelog.gunzip(bomb, "bomb.gz")
    assert truncated and len(text) == changelog.MAX_TEXT
    assert changelog.parse(text, truncated=truncated).entries[0].cves[0][0] == "CVE-2026-0001"


@pytest.mark.parametrize("data", [b"not gzip", b"\x1f\x8b" + b"\xff" * 40])
def test_a_corrupt_changelog_is_one_error(data: bytes) -> None:
    with pytest.raises(InvalidPackage, match="not a gzip file"):
        changelog.gunzip(data, "x.gz")


def test_hostile_changelog_text_is_bounded() -> None:
    long_line = "  * " + "CVE-2026-1111 " * 1000   # over MAX_LINE: skipped
    many = "\n".join(f"  * CVE-2026-{i:05d}" for i in range(changelog.MAX_CVES + 50))
    text = f"x (1.0-1) unstable; urgency=low\n\n{long_line}\n{many}\n\n -- A <a@b>  bogus date\n".encode()
    log = changelog.parse(text)
    assert len(log.entries[0].cves) == changelog.MAX_CVES and log.entries[0].date == ""
    assert changelog.parse(b"\xff\xfe garbage\n\x00" * 1000).entries == ()
    assert zlib  # (the gzip module writes what zlib reads)


# ---------------------------------------------------------------- feed

def test_feed_bytes_are_deterministic_and_round_trip() -> None:
    f = feed.Feed(advisories=(parse(osv_doc("VER-2")), parse(osv_doc("VER-1"))))
    data = feed.encode(f)
    assert data == feed.encode(feed.Feed(advisories=tuple(reversed(f.advisories))))
    assert [a.id for a in feed.decode(data, "feed").advisories] == ["VER-1", "VER-2"]
    with pytest.raises(VerificationError, match="malformed advisory feed"):
        feed.decode(b"junk", "feed")


def test_merge_refuses_duplicates_and_stale_replacements() -> None:
    base = feed.merge(feed.Feed(), [parse(osv_doc())])
    assert feed.merge(base, [parse(osv_doc())]) == base                     # identical: no change
    changed = parse(osv_doc(summary="new text"))
    with pytest.raises(UserError, match="already in the feed"):
        feed.merge(base, [changed])
    with pytest.raises(UserError, match="not later than"):
        feed.merge(base, [changed], replace=True)
    newer = parse(osv_doc(summary="new text", modified="2026-12-02T00:00:00Z"))
    assert feed.merge(base, [newer], replace=True).advisories[0].summary == "new text"
    with pytest.raises(UserError, match="listed twice"):
        feed.merge(base, [newer, newer])


def test_newer_keeps_what_a_derived_feed_cannot_replace() -> None:
    base = feed.merge(feed.Feed(), [parse(osv_doc()), parse(osv_doc("VER-2"))])
    same, stale = parse(osv_doc()), parse(osv_doc("VER-2", summary="other text"))
    later = parse(osv_doc(summary="later", modified="2026-12-02T00:00:00Z"))
    fresh = parse(osv_doc("VER-3"))
    assert feed.newer(base, [same, stale, fresh]) == [fresh]
    assert feed.newer(base, [later, stale]) == [later]
    taken = feed.merge(base, feed.newer(base, [later, stale, fresh]), replace=True)   # no refusal
    assert {a.id: a.summary for a in taken.advisories} == {"VER-2026-0001": "later", "VER-2": "nginx flaw",
                                                            "VER-3": "nginx flaw"}


# ---------------------------------------------------------------- a real repository

@pytest.fixture()
def repo(tmp_path: Path) -> tuple[Path, dict[str, SigningKey]]:
    for n in ("root", "targets", *ONLINE, "security"):
        generate(n, tmp_path / "keys")
    k = {n: load_signing_key(tmp_path / "keys" / f"{n}.key") for n in ("root", "targets", *ONLINE, "security")}
    init(tmp_path / "repo", root_keys=[k["root"]], root_threshold=1, targets_keys=[k["targets"]],
         online={r: [k[r]] for r in ONLINE}, online_paths={r: [str(tmp_path / "keys" / f"{r}.key")] for r in ONLINE})
    return tmp_path / "repo", k


def test_advisories_are_a_signed_role_the_client_verifies(repo: tuple[Path, dict[str, SigningKey]],
                                                          tmp_path: Path) -> None:
    directory, k = repo
    with pytest.raises(UserError, match="delegates no 'advisories' role"):
        add_advisories(RepoStore(directory), [parse(osv_doc())], [k["security"]])
    assert delegate_advisories(RepoStore(directory), [k["security"].public], targets_keys=[k["targets"]])
    with pytest.raises(UserError, match="needs 1 of its keys"):
        add_advisories(RepoStore(directory), [parse(osv_doc())], [k["index"]])
    add_advisories(RepoStore(directory), [parse(osv_doc())], [k["security"]])
    assert [a.id for a in read_feed(RepoStore(directory)).advisories] == ["VER-2026-0001"]
    root = (directory / "metadata" / "1.root.json").read_bytes()
    client = RepositoryClient(str(directory), root, tmp_path / "cache")
    assert [a.id for a in client_feed(client).advisories] == ["VER-2026-0001"]
    # tampering with the stored feed is caught by the client (hash from the signed role)
    stored = next((directory / "targets" / "advisories").iterdir())
    stored.write_bytes(feed.encode(feed.Feed(advisories=(parse(osv_doc("VER-FAKE")),))))
    with pytest.raises(ComposerError):
        client_feed(RepositoryClient(str(directory), root, tmp_path / "cache2"))


def test_cli_delegate_add_list(repo: tuple[Path, dict[str, SigningKey]], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    directory, _ = repo
    keys = tmp_path / "keys"
    assert main(["advisory", "delegate", str(directory), "--key", str(keys / "security.pub"),
                 "--targets-key", str(keys / "targets.key")]) == 0
    good = tmp_path / "VER-2026-0001.json"
    good.write_text(json.dumps(osv_doc()))
    assert main(["advisory", "add", str(directory), str(good), "--key", str(keys / "security.key")]) == 0
    misnamed = tmp_path / "VER-2026-0009.json"
    misnamed.write_text(json.dumps(osv_doc()))
    assert main(["advisory", "add", str(directory), str(misnamed), "--key", str(keys / "security.key")]) == 1
    assert "named VER-2026-0009 but the advisory's id is VER-2026-0001" in capsys.readouterr().err
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps(osv_doc(summary="other")))
    assert main(["advisory", "add", str(directory), str(dup), "--key", str(keys / "security.key")]) == 1
    assert "already in the feed" in capsys.readouterr().err
    assert main(["advisory", "list", str(directory), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    from composer import schema
    schema.check(doc, "advisory-list.schema.json", origin="list", locate=lambda _p: (1, 1))
    assert [(a["id"], a["severity"]) for a in doc["advisories"]] == [("VER-2026-0001", "critical")]


def test_vpk_audit_reads_the_feed_through_the_roots_own_repositories(
        repo: tuple[Path, dict[str, SigningKey]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``vpk audit`` (= ``vcomp pkg --root R audit``): the installed versions against the feed of the repositories
    the root records, read through their pinned roots."""
    from composer.pkgmgr import db
    from composer.pkgmgr.install import install
    from tests.hostile import directory as d
    from tests.hostile import fetched, file, new_key
    directory, k = repo
    delegate_advisories(RepoStore(directory), [k["security"].public], targets_keys=[k["targets"]])
    add_advisories(RepoStore(directory), [parse(osv_doc("VER-2026-0002", name="app", fixed="1.1.0",
                                                        ecosystem="Veridian", severity="high"))], [k["security"]])
    key = new_key()
    root = tmp_path / "root"
    install(root, [fetched(tmp_path / "pkgs", key, "base", "1.0.0", [d("etc"), file("etc/base", b"b\n")]),
                   fetched(tmp_path / "pkgs", key, "app", "1.0.0", [d("etc"), file("etc/app", b"a\n")])],
            profile_digest="p" * 64, lock_digest="l" * 64, epoch=1700000000)
    pinned = json.loads((directory / "metadata" / "1.root.json").read_bytes())
    db.save_repositories(root, [{"name": "main", "url": directory.resolve().as_uri(), "root": pinned}])
    assert main(["pkg", "--root", str(root), "audit", "--severity", "critical"]) == 0
    out = capsys.readouterr().out
    assert "app" in out and "VER-2026-0002" in out and "high" in out and "1.1.0" in out
    assert "0 at or above severity critical" in out
    assert main(["pkg", "--root", str(root), "audit", "--severity", "high", "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    from composer import schema
    schema.check(doc, "audit.schema.json", origin="audit", locate=lambda _p: (1, 1))
    assert (doc["kind"], doc["over-threshold"], [f["name"] for f in doc["findings"]]) == ("root", 1, ["app"])
    from composer.cli.vpk import main as vpk
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "device-cache"))   # not the device's /var/cache/vpk
    assert vpk(["--root", str(root), "audit"]) == 0 and "VER-2026-0002" in capsys.readouterr().out


def test_a_stable_backport_that_sorts_below_the_fixing_upload_is_not_affected() -> None:
    """expat 2.9.0-1~deb13u1 (trixie) backports 2.9.0-1 (unstable), whose entry names the CVE: the fix is in
    every version from 2.9.0-1~deb13u1 up, not from 2.9.0-1."""
    text = b"""expat (2.9.0-1~deb13u1) trixie; urgency=medium

  * Backport to trixie.

 -- M <m@d.org>  Sat, 02 May 2026 12:00:00 +0000

expat (2.9.0-1) unstable; urgency=medium

  * New upstream release, fixes CVE-2026-77214.

 -- M <m@d.org>  Fri, 01 May 2026 12:00:00 +0000

expat (2.8.0-2) unstable; urgency=medium

  * Fix CVE-2026-1000.

 -- M <m@d.org>  Fri, 01 Apr 2026 12:00:00 +0000
"""
    fixes = changelog.first_fixes(changelog.parse(text))
    assert {c: e.version for c, (e, _) in fixes.items()} == {"CVE-2026-77214": "2.9.0-1~deb13u1",
                                                           "CVE-2026-1000": "2.8.0-2"}
    source = changelog.Source(name="expat", changelog=changelog.parse(text),
                              binaries=(("libexpat1", "2.9.0-1~deb13u1"),))
    advisories = changelog.derive([source])
    here = match.Package(name="libexpat1", version="2.9.0-1~deb13u1", scheme="deb")
    older = match.Package(name="libexpat1", version="2.8.0-1", scheme="deb")
    assert not match.audit([here], advisories)
    assert [f.advisory.id for f in match.audit([older], advisories)] == ["DEBIAN-CVE-2026-1000",
                                                                          "DEBIAN-CVE-2026-77214"]
