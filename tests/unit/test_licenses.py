"""SPDX expressions through license-expression (composer/spdx.py) and the licence gates of a
profile's policy (allowed-licenses, denied-licenses: composer/gitops/policy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer import spdx as licenses
from composer.gitops import policy
from composer.gitops.policy import Locked
from composer.profile.load import load_profile
from composer.report.sbom import declared_license

VALID = {   # text -> normalised
    "MIT": "MIT",
    "GPL-3.0-only OR MIT": "GPL-3.0-only OR MIT",
    "gpl-2.0+ or mit": "GPL-2.0-or-later OR MIT",                  # operators in any case, ids canonical
    "GPL-2.0": "GPL-2.0-only",                                     # a deprecated id reads as its current form
    "LicenseRef-Debian-copyright": "LicenseRef-Debian-copyright",
    "GPL-2.0-only WITH Linux-syscall-note AND MIT": "GPL-2.0-only WITH Linux-syscall-note AND MIT",
    "(MIT OR Apache-2.0) AND BSD-3-Clause": "(MIT OR Apache-2.0) AND BSD-3-Clause",
}
INVALID = {   # text -> a word of the reason
    "": "empty",
    "MIT OR": "OR requires two",
    "(MIT": "Invalid expression",
    "Foo-License": "unknown license id 'Foo-License'",
    "A B C": "unknown license id",
    "LicenseRef-a_b": "unknown license id",                        # '_' is not in an SPDX idstring
    "NOASSERTION": "unknown license id",
    "GPL-2.0-only WITH MIT": "exception",
    "MIT " * 300: "longer than",
    " AND ".join(["(MIT OR ISC)"] * 9): "more than 256 alternatives",
}


@pytest.mark.parametrize("text", sorted(VALID))
def test_valid_expressions_are_normalised(text: str) -> None:
    assert licenses.expression(text) == VALID[text] and licenses.problem(text) == ""


@pytest.mark.parametrize("text", sorted(INVALID))
def test_invalid_expressions_say_why(text: str) -> None:
    assert licenses.expression(text) is None
    assert INVALID[text] in licenses.problem(text)


def test_choices_expand_or_and_keep_with_together() -> None:
    p = licenses.parse("(MIT OR Apache-2.0) AND GPL-2.0-only WITH Linux-syscall-note")
    assert [[t.text for t in c] for c in p.choices] == [
        ["Apache-2.0", "GPL-2.0-only WITH Linux-syscall-note"], ["GPL-2.0-only WITH Linux-syscall-note", "MIT"]]


def test_deny_passes_an_or_with_an_allowed_branch() -> None:
    assert licenses.avoidable("GPL-3.0-only OR MIT", ["GPL-3.0-only"])
    assert licenses.avoidable("GPL-3.0-only OR MIT", ["GPL-3.0"])          # the deprecated id is GPL-3.0-only
    assert not licenses.avoidable("GPL-3.0-only AND MIT", ["GPL-3.0-only"])
    assert not licenses.avoidable("GPL-3.0-only WITH GCC-exception-3.1", ["GPL-3.0-only"])
    assert licenses.avoidable("GPL-3.0-or-later", ["GPL-3.0-only"])         # another license


def test_allow_takes_a_license_with_its_exception() -> None:
    assert licenses.allowed_choice("GPL-2.0-only WITH Linux-syscall-note", ["GPL-2.0-only"])
    assert licenses.allowed_choice("GPL-2.0-only WITH Linux-syscall-note", ["GPL-2.0-only WITH Linux-syscall-note"])
    assert not licenses.allowed_choice("GPL-2.0-only", ["GPL-2.0-only WITH Linux-syscall-note"])
    assert licenses.allowed_choice("MIT OR GPL-3.0-only", ["MIT"])
    assert not licenses.allowed_choice("MIT AND GPL-3.0-only", ["MIT"])


def test_list_entries_name_one_license() -> None:
    assert licenses.entry_problems(["MIT", "GPL-2.0-only WITH Classpath-exception-2.0", "LicenseRef-mine"]) == []
    assert [i for i, _ in licenses.entry_problems(["MIT OR ISC", "Nope", "MIT"])] == [0, 1]


LOCKED = [Locked(arch="x86_64", name=n, version="1.0.0", license=lic) for n, lic in
          (("dual", "GPL-3.0-only OR MIT"), ("both", "GPL-3.0-only AND MIT"), ("kernel", "GPL-2.0-only"),
           ("broken", "Not A License"), ("silent", ""))]


def gates(doc: dict[str, object]) -> list[tuple[str, str]]:
    return [(v.rule, v.message) for v in policy.evaluate(doc, locked=LOCKED, outputs=(), changes=(), callouts=())]


def test_the_deny_gate() -> None:
    assert gates({"denied-licenses": ["GPL-3.0-only"]}) == [
        ("denied-licenses", "x86_64: both 1.0.0 is licensed GPL-3.0-only AND MIT: every choice includes a denied "
                            "license (GPL-3.0-only)"),
        ("denied-licenses", "x86_64: broken 1.0.0 is licensed 'Not A License', not a valid SPDX expression "
                            "(unknown license id 'Not A License' (not on the SPDX license list; a license of your "
                            "own is LicenseRef-NAME))")]


def test_the_allow_gate() -> None:
    found = gates({"allowed-licenses": ["MIT", "GPL-2.0-only"]})
    assert [m.split(" is licensed")[0] for _, m in found] == ["x86_64: both 1.0.0", "x86_64: broken 1.0.0"]
    assert policy.license_ok("GPL-3.0-only OR MIT", ["MIT"]) and not policy.license_ok("Nope", ["Nope"])


def test_the_sbom_keeps_valid_expressions_and_refs_the_rest() -> None:
    assert declared_license("gpl-2.0+ or mit") == ("GPL-2.0-or-later OR MIT", {})
    assert declared_license("LicenseRef-Debian-copyright")[0] == "LicenseRef-Debian-copyright"
    assert declared_license("Public Domain") == ("LicenseRef-vcomp-Public-Domain", {
        "LicenseRef-vcomp-Public-Domain": "Public Domain"})


def test_profile_licence_lists_name_one_valid_license_each(tmp_path: Path) -> None:
    from tests.unit.test_profile import GOOD, errors_of, write
    bad = GOOD.replace("drivers:", "policy: {allowed-licenses: [MIT, MIT OR ISC], denied-licenses: [Nope-1.0]}\n"
                                   "licenses: {texts: true}\ndrivers:")
    text = "\n".join(errors_of(write(tmp_path, bad)))
    assert "policy.allowed-licenses[1]: 'MIT OR ISC': 'MIT OR ISC' is an expression; a list entry names one" in text
    assert "policy.denied-licenses[0]: 'Nope-1.0': unknown license id 'Nope-1.0'" in text
    good = GOOD.replace("drivers:", "policy: {denied-licenses: [GPL-3.0-only]}\nlicenses: {texts: true}\ndrivers:")
    prof = load_profile(write(tmp_path, good, "ok.yaml"))
    assert prof.policy.denied_licenses == ("GPL-3.0-only",) and prof.licenses.texts
    assert prof.to_dict()["licenses"] == {"texts": True}
