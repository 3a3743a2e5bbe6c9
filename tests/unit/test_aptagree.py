"""The apt agreement harness (tests/support/aptagree.py) on the committed trimmed fixture, without apt:
stanzas -> entries, the comparison and its known differences, the table, the order checks (fast; the real
archive run is tests/archive/test_apt_agreement.py, marker ``archive``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.package import debfixture as fx
from tests.conftest import REPO
from tests.support import aptagree as ag

FIXTURE = REPO / "tests" / "data" / "debian-bookworm-amd64"


@pytest.fixture(scope="module")
def suites() -> ag.Suites:
    text = fx.decompress((FIXTURE / "Packages.zst").read_bytes(), limit=8 << 20)
    return ag.read_suites({"bookworm": text.encode(), ag.SECURITY: _security_stanza().encode()})


@pytest.fixture(scope="module")
def entries(suites: ag.Suites) -> ag.Entries:
    return ag.entries_of(suites.stanzas)


def _security_stanza() -> str:
    return ("Package: bash\nVersion: 5.2.15-2+deb12u9\nArchitecture: amd64\nFilename: pool/b/bash.deb\n"
            "Size: 1\nSHA256: " + "0" * 64 + "\nDepends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)\n\n")


def test_every_stanza_becomes_an_entry_with_its_debian_version(suites: ag.Suites, entries: ag.Entries) -> None:
    assert len(entries.entries) == len(suites.stanzas) == suites.counts["bookworm"] + 1
    by_key = {(e.name, e.version_text) for e in entries.entries}
    assert all((s.fields["Package"], s.fields["Version"]) in by_key for s in suites.stanzas)
    libc = next(e for e in entries.entries if e.name == "libc6")
    assert libc.version_scheme == "deb" and libc.relations["requires"]
    assert ag.essential_names(suites.stanzas) == tuple(json.loads((FIXTURE / "expected.json").read_text())
                                                       ["essential"])


def test_security_versions_and_the_newest(suites: ag.Suites, entries: ag.Entries) -> None:
    assert ag.security_versions(suites) == {"bash": "5.2.15-2+deb12u9"}
    newest = ag.newest_versions(entries.entries)
    assert newest["bash"] == "5.2.15-2+deb12u9"
    assert suites.suite_of[("bash", "5.2.15-2+deb12u9", "amd64")] == ag.SECURITY


def test_the_order_checks_find_nothing_on_the_fixture(suites: ag.Suites) -> None:
    same, relations = ag.order_pairs(suites.stanzas)
    assert any("5.2.15-2+deb12u9" in pair for pair in same)
    assert len(relations) > 1000
    assert ag.order_mismatches(same + relations) == []
    assert ag.libsolv_mismatches(same + relations) == []


def test_compare_names_every_difference() -> None:
    apt = ag.Outcome(ok=True, packages={"a": "1", "b": "2-1", "c": "1:3"})
    ours = ag.Outcome(ok=True, packages={"a": "1", "b": "2-2", "d": "4"})
    assert [str(d) for d in ag.compare("x", ours, apt)] == [
        "b: ours 2-2, apt 2-1", "c: ours -, apt 1:3", "d: ours 4, apt -"]
    assert ag.compare("x", apt, apt) == []
    failed = ag.Outcome(ok=False, message="postfix conflicts with mail-transport-agent")
    assert [d.package for d in ag.compare("two-mtas", ours, failed)] == [ag.FAILED]
    assert ag.compare("two-mtas", failed, failed) == []
    vague = ag.Outcome(ok=False, message="no solution")
    assert [d.package for d in ag.compare("two-mtas", vague, failed)] == [ag.MESSAGE]
    virtual = ag.Outcome(ok=False, providers=("exim4-daemon-light", "postfix"))
    listed = ag.Outcome(ok=False, message="provided by exim4-daemon-light, postfix: name one")
    assert ag.compare("mail-transport-agent", listed, virtual) == []
    assert ag.compare("mail-transport-agent", vague, virtual)[0].ours == \
        "does not name exim4-daemon-light postfix"


def test_known_differences_explain_and_the_table_marks_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "known.toml"
    path.write_text('[[difference]]\nrequest = "web"\npackage = "b"\nreason = "apt is greedy"\n\n'
                    '[[difference]]\nrequest = "*"\npackage = "zz"\nreason = "never used"\n')
    known = ag.read_known(path)
    apt = ag.Outcome(ok=True, packages={"a": "1", "b": "2"}, seconds=1.5)
    ours = ag.Outcome(ok=True, packages={"a": "1", "c": "3"}, seconds=0.01)
    r = ag.row("web", ours, apt, known)
    assert [d.package for d in r.unexplained] == ["c"]
    assert [(d.package, k.reason) for d, k in r.explained] == [("b", "apt is greedy")]
    text = ag.table([r])
    assert "| web | 2 | 2 | 2 (1) | 0.010 | 1.50 |" in text
    assert "- web: c: ours 3, apt - -- UNEXPLAINED" in text and "apt is greedy" in text
    assert [k.package for k in ag.unused(known, [r])] == ["zz"]
    path.write_text('[[difference]]\nrequest = "web"\npackage = "b"\n')
    with pytest.raises(UserError, match="difference #1 needs request, package and reason"):
        ag.read_known(path)


def test_the_committed_known_differences_read() -> None:
    assert all(k.reason for k in ag.read_known())


def test_recorded_answers_read_as_outcomes() -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())["requests"]
    web = ag.recorded_outcome(expected["web"])
    assert web.ok and web.packages["nginx"].startswith("1.22")
    mta = ag.recorded_outcome(expected["mail-transport-agent"])
    assert not mta.ok and "postfix" in mta.providers


def test_our_requests_add_the_base_set_as_essential() -> None:
    essential = ("bash", "dash")
    request = next(r for r in fx.REQUESTS if r.label == "desktop-essential")
    reqs = ag.our_requests(request, essential)
    assert [(r.name, r.reason.kind) for r in reqs] == [("xfce4", "requested"), ("bash", "essential"),
                                                         ("dash", "essential")]
