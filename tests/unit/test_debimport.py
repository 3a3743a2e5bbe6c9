"""Debian ``Packages`` stanzas -> ``.vpk`` metadata (design14 §2.1, §4.1-4.2): the bounded reader, the relation
parser, the field mapping, the cannot-express report and the closure.

``tests/data/debian-stanzas.txt`` holds 300 real stanzas of bookworm main amd64 (``/work/scratch14/Packages``,
2026-12-04), verbatim: the closure of ``bash nano``, the 23 Essential packages, up to 8 each of epochs, ``~``,
versions without a revision, alternatives, versioned and unversioned Provides, Breaks, ``:any``, foreign
qualifiers, every Multi-Arch value, Pre-Depends, Enhances, versioned Conflicts, the priorities, library and
development sections, ``contrib/``-style sections, ``all`` packages, names over 64 characters, the rest random.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import InvalidPackage
from composer.package.deb822 import (
    Alternative,
    Deb822Error,
    Deb822Limits,
    Stanza,
    parse_relations,
    parse_stanzas,
)
from composer.package.debimport import (
    LICENSE,
    DebMetadata,
    DebSource,
    Relations,
    closure,
    map_stanza,
    map_stanzas,
    split_version,
)

SAMPLE = Path(__file__).parent.parent / "data" / "debian-stanzas.txt"
ARCHIVE = Path("/work/scratch14/Packages")


@pytest.fixture(scope="module")
def stanzas() -> tuple[Stanza, ...]:
    return parse_stanzas(SAMPLE.read_bytes(), "debian-stanzas.txt")


def _by_name(stanzas: tuple[Stanza, ...], name: str) -> Stanza:
    return next(s for s in stanzas if s.fields["Package"] == name)


def _meta(stanzas: tuple[Stanza, ...], name: str) -> DebMetadata:
    meta, _ = map_stanza(_by_name(stanzas, name))
    assert meta is not None
    return meta


# --- the sample, field by field ----------------------------------------------------------------------------------

def test_the_sample_is_small_and_whole(stanzas: tuple[Stanza, ...]) -> None:
    assert SAMPLE.stat().st_size < 1 << 20
    assert len(stanzas) == 300
    assert len({s.fields["Package"] for s in stanzas}) == 300
    bash = _by_name(stanzas, "bash")
    assert bash.origin == "debian-stanzas.txt" and bash.lines["Package"] == bash.line
    assert bash.where("Depends") == f"debian-stanzas.txt:{bash.lines['Depends']} (bash) Depends"


def test_bash(stanzas: tuple[Stanza, ...]) -> None:
    assert _meta(stanzas, "bash") == DebMetadata(
        name="bash", arch="x86_64", upstream_version="5.2.15-2+b13", epoch=0, upstream="5.2.15",
        revision="2+b13", essential=True, priority="required", multi_arch="foreign",
        description="GNU Bourne Again SHell", homepage="http://tiswww.case.edu/php/chet/bash/bashtop.html",
        authors=("Matthias Klose <doko@debian.org>",), type="system", license=LICENSE, context="bash_t",
        provides=(),
        relations=Relations(
            requires=("base-files (>= 2.1.12)", "debianutils (>= 5.6-0.1)"),
            pre_requires=("libc6 (>= 2.36)", "libtinfo6 (>= 6)"),
            recommends=("bash-completion (>= 20060301-0)",), suggests=("bash-doc",),
            conflicts=("bash-completion (<< 20060301-0)",),
            replaces=("bash-completion (<< 20060301-0)", "bash-doc (<= 2.05-1)")),
        source=DebSource(name="bash", version="5.2.15-2+b13", arch="amd64",
                         sha256="82130bb6a560cd2a7234d8018baf73f188f5dd56413d5aa0accc987b2197a6a1",
                         path="pool/main/b/bash/bash_5.2.15-2+b13_amd64.deb", size=1490652, installed_size=7164))


def test_bash_as_the_metadata_tables(stanzas: tuple[Stanza, ...]) -> None:
    d = _meta(stanzas, "bash").to_dict()
    assert d["package"] == {
        "name": "bash", "epoch": 0, "revision": "2+b13", "upstream-version": "5.2.15-2+b13",
        "version-scheme": "deb", "description": "GNU Bourne Again SHell", "license": LICENSE, "type": "system",
        "arch": "x86_64", "essential": True, "multi-arch": "foreign", "priority": "required",
        "homepage": "http://tiswww.case.edu/php/chet/bash/bashtop.html",
        "authors": ["Matthias Klose <doko@debian.org>"]}
    assert d["security"] == {"context": "bash_t"}
    assert list(d["relations"]) == ["requires", "pre-requires", "recommends", "suggests", "conflicts", "replaces"]
    assert d["provenance"] == {"sources": [{
        "kind": "deb", "name": "bash", "version": "5.2.15-2+b13", "arch": "amd64",
        "sha256": "82130bb6a560cd2a7234d8018baf73f188f5dd56413d5aa0accc987b2197a6a1",
        "path": "pool/main/b/bash/bash_5.2.15-2+b13_amd64.deb", "size": 1490652, "installed-size": 7164}]}


def test_an_epoch_versioned_provides_and_versioned_conflicts(stanzas: tuple[Stanza, ...]) -> None:
    m = _meta(stanzas, "erlang-base")
    assert (m.upstream_version, m.epoch, m.upstream, m.revision) == (
        "1:25.2.3+dfsg-1+deb12u4", 1, "25.2.3+dfsg", "1+deb12u4")
    assert m.provides == ("erlang-abi = 17.0", "erlang-abi-17.0", "erlang-pcre = 8.44")
    assert m.multi_arch == "allowed" and m.type == "application" and m.priority == "optional"
    assert m.relations.conflicts == (
        "erlang (<< 1:25.2.3+dfsg-1+deb12u4)", "erlang-base-hipe", "erlang-doc (>> 1:25.2.3+dfsg-999)",
        "erlang-doc (<< 1:25.2.3+dfsg)", "erlang-doc-html (<< 1:13.b.4)", "erlang-manpages (<= 1:11.b.1-2)")
    assert m.relations.breaks == ("rabbitmq-server (<< 3.7.7)",)
    assert m.relations.recommends[1] == "erlang-crypto (= 1:25.2.3+dfsg-1+deb12u4)"
    assert len(m.relations.replaces) == 13 and m.relations.enhances == ()


def test_any_tilde_and_an_all_package(stanzas: tuple[Stanza, ...]) -> None:
    m = _meta(stanzas, "node-semver")
    assert (m.arch, m.source.arch) == ("noarch", "all")
    assert (m.epoch, m.upstream, m.revision) == (0, "7.3.5+~7.3.9", "2")
    assert m.relations.requires == ("node-lru-cache", "nodejs:any")
    assert m.provides == ("node-types-semver = 7.3.9",)
    assert m.relations.breaks == ("node-gyp (<< 6.0.1-1)", "node-typescript-types (<< 20201117~)")
    assert m.context == "node_semver_t"
    assert _meta(stanzas, "0ad-data").context == "deb_0ad_data_t"


def test_alternatives_and_foreign_qualifiers_are_kept_and_counted(stanzas: tuple[Stanza, ...]) -> None:
    meta, findings = map_stanza(_by_name(stanzas, "crossbuild-essential-armhf"))
    assert meta is not None and meta.type == "development" and meta.arch == "noarch"
    assert meta.relations.requires == ("gcc-arm-linux-gnueabihf (>= 4:10.2) | gcc:armhf",
                                       "g++-arm-linux-gnueabihf (>= 4:10.2) | g++:armhf", "dpkg-cross")
    assert findings.count("foreign arch qualifier") == 2
    assert "unmapped field Source" in findings and "unmapped field MD5sum" in findings


def test_essential_pre_depends_and_breaks(stanzas: tuple[Stanza, ...]) -> None:
    m = _meta(stanzas, "dpkg")
    assert m.essential and m.type == "system" and m.revision == "" and m.upstream == "1.21.23"
    assert m.relations.pre_requires[-1] == "zlib1g (>= 1:1.1.4)" and len(m.relations.pre_requires) == 7
    assert m.relations.breaks == ("libapt-pkg5.0 (<< 1.7~b)", "lsb-base (<< 10.2019031300)")
    essential = [m.name for m in map_stanzas(stanzas).packages if m.essential]
    assert len(essential) == 23 and "bash" in essential and "dpkg" in essential


def test_libraries_multi_arch_same_and_alternatives_in_suggests(stanzas: tuple[Stanza, ...]) -> None:
    m = _meta(stanzas, "libc6")
    assert (m.type, m.multi_arch, m.essential) == ("library", "same", False)
    assert m.relations.suggests[1] == "debconf | debconf-2.0"
    assert len(m.relations.breaks) == 27 and m.relations.replaces == ("libc6-amd64",)
    dev = _meta(stanzas, "libxcomp-dev")
    assert (dev.type, dev.epoch, dev.upstream) == ("development", 2, "3.5.99.26")


def test_important_priority_and_tilde_revision(stanzas: tuple[Stanza, ...]) -> None:
    m = _meta(stanzas, "systemd")
    assert (m.priority, m.type, m.revision) == ("important", "application", "1~deb12u2")
    assert m.provides == ("systemd-sysusers = 252.39-1~deb12u2", "systemd-tmpfiles = 252.39-1~deb12u2")
    assert m.relations.recommends == ("default-dbus-system-bus | dbus-system-bus", "systemd-timesyncd | time-daemon")


def test_a_name_over_64_characters_is_skipped_and_counted(stanzas: tuple[Stanza, ...]) -> None:
    long = next(s for s in stanzas if len(s.fields["Package"]) > 64)
    meta, findings = map_stanza(long)
    assert meta is None and "package name over 64 characters (skipped)" in findings


def test_the_report_of_the_sample(stanzas: tuple[Stanza, ...]) -> None:
    imported = map_stanzas(stanzas)
    assert (imported.report.stanzas, imported.report.mapped, len(imported.packages)) == (300, 299, 299)
    counts = imported.report.counts
    assert counts["foreign arch qualifier"] == 13
    assert counts["package name over 64 characters (skipped)"] == 1
    assert counts["provide name over 64 characters (dropped)"] == 19
    assert counts["relation name over 64 characters"] == 1
    assert counts["unmapped field MD5sum"] == counts["unmapped field Description-md5"] == 300
    assert counts["unmapped field Source"] == 221 and counts["unmapped field Tag"] == 178
    assert not any("restriction" in k for k in counts)
    assert imported.report.lines()[0] == "      13  foreign arch qualifier"
    assert [m.name for m in imported.packages] == [s.fields["Package"] for s in stanzas
                                                   if len(s.fields["Package"]) <= 64]


def test_every_mapped_value_fits_the_package_patterns(stanzas: tuple[Stanza, ...]) -> None:
    import re
    name = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")
    for m in map_stanzas(stanzas).packages:
        assert name.fullmatch(m.name)
        assert re.fullmatch(r"[a-z][a-z0-9_]*_t", m.context)
        assert 1 <= len(m.description) <= 1000
        assert m.type in {"system", "application", "library", "development"}
        assert m.arch in {"x86_64", "noarch"}


# --- the relation parser -----------------------------------------------------------------------------------------

def test_relations_parse_every_part() -> None:
    (clause,) = parse_relations("foo:any  ( >=  1:2.0~rc1-3 ) [amd64 !i386] <!nocheck> <cross> | bar",
                                "Packages:3 (x) Depends")
    assert clause == (Alternative(name="foo", arch="any", op=">=", version="1:2.0~rc1-3", archs=("amd64", "!i386"),
                                  profiles=(("!nocheck",), ("cross",))), Alternative(name="bar"))
    assert clause[0].text() == "foo:any (>= 1:2.0~rc1-3) [amd64 !i386] <!nocheck> <cross>"
    assert parse_relations("a,\n b (<< 2)", "w") == ((Alternative(name="a"),),
                                                     (Alternative(name="b", op="<<", version="2"),))
    assert parse_relations("  ", "w") == ()


def test_restrictions_are_counted() -> None:
    text = b"Package: aa\nVersion: 1\nArchitecture: amd64\nFilename: f\nSize: 1\nSHA256: " + b"0" * 64 + \
        b"\nDepends: bb [amd64], cc <!nocheck>\n"
    (stanza,) = parse_stanzas(text, "P")
    _, findings = map_stanza(stanza)
    assert findings.count("[arch] restriction") == 1 and findings.count("<profile> restriction") == 1


@pytest.mark.parametrize(("text", "part"), [
    ("foo (>= 1.0", "'foo (>= 1.0'"),
    ("foo (~> 1.0)", "'foo (~> 1.0)'"),
    ("Foo", "'Foo'"),
    ("foo bar", "'foo bar'"),
    ("foo (>= ${binary:Version})", "'foo (>= ${binary:Version})'"),
    ("foo | | bar", "'foo | | bar'"),
    ("foo (< 1.0)", "obsolete operator '<'"),
])
def test_bad_relations_name_the_place_and_the_clause(text: str, part: str) -> None:
    with pytest.raises(Deb822Error) as e:
        parse_relations(f"ok, {text}", "Packages:12 (pkg) Depends")
    assert e.value.message.startswith("Packages:12 (pkg) Depends: clause ")
    assert part in e.value.message and "\n" not in e.value.message and e.value.hint


def test_an_empty_clause_is_refused() -> None:
    with pytest.raises(Deb822Error, match=r"^w: clause 2 is empty$"):
        parse_relations("a, , b", "w")


# --- hostile and malformed input: one line naming file:line ----------------------------------------------------

GOOD = ("Package: aa\nVersion: 1.0-1\nArchitecture: amd64\nFilename: pool/aa.deb\nSize: 10\nSHA256: "
        + "a" * 64 + "\nDescription: x\n")


def _error(data: bytes, limits: Deb822Limits | None = None) -> str:
    with pytest.raises(Deb822Error) as e:
        imported = parse_stanzas(data, "Packages", limits)
        map_stanzas(imported)
    assert isinstance(e.value, InvalidPackage) and e.value.hint
    assert "\n" not in e.value.message
    return e.value.message


def test_an_oversized_field() -> None:
    data = (GOOD + "\n" + GOOD.replace("aa", "bb") + "Depends: " + "x" * ((1 << 20) + 1) + "\n").encode()
    assert _error(data) == "Packages:16: field Depends is over max_field_bytes=1048576"


def test_an_oversized_continued_field() -> None:
    data = (GOOD + "Homepage: h\n" + " .\n" * 40).encode()
    assert _error(data, Deb822Limits(max_field_bytes=64)) == "Packages:30: field Homepage is over max_field_bytes=64"


def test_more_stanzas_than_the_cap() -> None:
    data = b"Package: a\n\n" * 100_001
    assert _error(data, Deb822Limits(max_stanzas=100_000)) == "Packages:200001: more than max_stanzas=100000 stanzas"


def test_a_file_over_the_total_size() -> None:
    assert _error(GOOD.encode(), Deb822Limits(max_total_bytes=10)).startswith("Packages:1: ")


def test_not_utf8() -> None:
    data = (GOOD + "\n").encode() + b"Package: b\xffb\n"
    assert _error(data) == "Packages:9: not UTF-8 (byte 0xff)"


@pytest.mark.parametrize(("text", "message"), [
    (" continued\n", "Packages:1: continuation line outside a field"),
    ("Package: a\nno colon here\n", "Packages:2: not a field line: 'no colon here'"),
    ("Package: a\nPackage: b\n", "Packages:2: field Package appears twice in the stanza"),
    (GOOD.replace("Version: 1.0-1\n", ""), "Packages:1 (aa): no Version field"),
    (GOOD.replace("1.0-1", "x:1.0"), "Packages:2 (aa) Version: 'x:1.0' is not a Debian version "
                                     "[EPOCH:]UPSTREAM[-REVISION]"),
    (GOOD.replace("1.0-1", "1.0-"), "Packages:2 (aa) Version: '1.0-' is not a Debian version "
                                    "[EPOCH:]UPSTREAM[-REVISION]"),
    (GOOD.replace("a" * 64, "z" * 64), "Packages:6 (aa) SHA256: not a sha256 digest"),
    (GOOD.replace("Size: 10", "Size: ten"), "Packages:5 (aa) Size: 'ten' is not a number"),
    (GOOD + "Essential: maybe\n", "Packages:8 (aa) Essential: 'maybe' is not yes or no"),
    (GOOD + "Depends: b,\n c (>> 1\n", "Packages:8 (aa) Depends: clause 'c (>> 1': 'c (>> 1' is not "
                                        "NAME[:ARCH] [(OP VERSION)] [[ARCH ...]] [<PROFILE ...>]"),
    (GOOD + "Provides: v (>= 1)\n", "Packages:8 (aa) Provides: 'v (>= 1)' is not NAME or NAME (= VERSION)"),
    (GOOD + "Breaks: v | w\n", "Packages:8 (aa) Breaks: 'v | w': alternatives in Breaks"),
    (GOOD + "Provides: v | w\n", "Packages:8 (aa) Provides: 'v | w' is not NAME or NAME (= VERSION)"),
    (GOOD + "Provides: v (= 1:)\n", "Packages:8 (aa) Provides: 'v (= 1:)': invalid Debian version '1:': nothing "
                                     "after colon in version number; expected [EPOCH:]UPSTREAM[-REVISION] like "
                                     "'1:2.36-9+deb12u7'"),
    (GOOD.replace("Package: aa", "Package: A_a"), "Packages:1 (A_a) Package: 'A_a' is not a Debian package name"),
])
def test_malformed_stanzas(text: str, message: str) -> None:
    assert _error(text.encode()) == message


FUZZ = settings(max_examples=150, deadline=None, derandomize=True)
_LINE = st.one_of(st.sampled_from(["", " .", "\tx", "Package: aa", "Version: 1:2-3", "Depends: a | b (>= 1)",
                                   "Provides: v (= 1)", "Architecture: all", "Essential: yes", "Size: 1",
                                   "SHA256: " + "a" * 64, "Filename: f", "Depends: a (", "X: y"]),
                  st.text(max_size=30))


def _read_all(data: bytes) -> None:
    """Parse, map and close; only a one-line Deb822Error naming the file may come out, and one-line findings."""
    try:
        stanzas = parse_stanzas(data, "P")
        findings = [f for s in stanzas for f in map_stanza(s)[1]]
        closure(stanzas, ["aa"])
    except Deb822Error as e:
        assert e.message.startswith("P:") and "\n" not in e.message
    else:
        assert not any("\n" in f for f in findings)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_either_parse_or_raise_one_deb822_error(data: bytes) -> None:
    _read_all(data)


@FUZZ
@given(st.lists(_LINE, max_size=30))
def test_random_stanzas_either_map_or_raise_one_deb822_error(lines: list[str]) -> None:
    _read_all("\n".join(lines).encode())


@pytest.mark.parametrize("text", [
    GOOD + "Depends: a (\n x\n", GOOD.replace("1.0-1", "1.0\n -1 x"), GOOD.replace("Package: aa", "Package: a\n b"),
    GOOD + "Essential: a\n b\n", GOOD.replace("Size: 10", "Size: 1\n 0"), GOOD + "Priority: a\n b\n",
])
def test_continued_values_give_one_line(text: str) -> None:
    _read_all(text.encode())


def test_a_stanza_without_package_is_refused_by_the_closure_too() -> None:
    with pytest.raises(Deb822Error, match=r"^P:1: no Package field$"):
        closure(parse_stanzas(b"Version: 1\n", "P"), ["a"])


def test_the_report_as_a_dict() -> None:
    imported = map_stanzas(parse_stanzas((GOOD + "\n" + GOOD.replace("aa", "bb") + "Tag: x\n").encode(), "P"))
    assert imported.report.to_dict() == {"stanzas": 2, "mapped": 2, "counts": {"unmapped field Tag": 1}}


def test_unknown_values_are_counted_not_fatal() -> None:
    (stanza,) = parse_stanzas((GOOD.replace("amd64", "i386") + "Priority: urgent\n").encode(), "P")
    assert map_stanza(stanza) == (None, ("architecture i386 not mapped (skipped)",))
    (stanza,) = parse_stanzas((GOOD + "Priority: urgent\nMulti-Arch: sometimes\n").encode(), "P")
    meta, findings = map_stanza(stanza)
    assert meta is not None and meta.priority is None and meta.multi_arch == "no"
    assert findings == ("Priority 'urgent' not mapped", "Multi-Arch 'sometimes' not mapped")


def test_split_version() -> None:
    assert split_version("1:2.36-9+deb12u7", "w") == (1, "2.36", "9+deb12u7")
    assert split_version("2.4.0-f2", "w") == (0, "2.4.0", "f2")
    assert split_version("1.0-2-3", "w") == (0, "1.0-2", "3")
    assert split_version("0:1:2", "w") == (0, "1:2", "")


# --- closure -----------------------------------------------------------------------------------------------------

BASH_NANO = ("base-files", "bash", "debianutils", "dpkg", "gawk", "gcc-12-base", "install-info", "libacl1",
             "libbz2-1.0", "libc6", "libgcc-s1", "libgmp10", "liblzma5", "libmd0", "libmpfr6", "libncursesw6",
             "libpcre2-8-0", "libreadline8", "libselinux1", "libsigsegv2", "libtinfo6", "libzstd1", "mawk",
             "nano", "original-awk", "readline-common", "tar", "zlib1g")


def test_the_closure_of_bash_nano(stanzas: tuple[Stanza, ...]) -> None:
    # every alternative and every provider: base-files Pre-Depends "awk", provided by gawk, mawk and original-awk
    result = closure(stanzas, ["nano", "bash"])
    assert result.names == BASH_NANO and result.missing == ()
    assert closure(stanzas, ["bash", "nano"]) == result


def test_the_closure_follows_recommends_and_reports_what_is_missing(stanzas: tuple[Stanza, ...]) -> None:
    plain = closure(stanzas, ["bash", "nano", "no-such-package"])
    assert plain.missing == ("no-such-package",)
    weak = closure(stanzas, ["bash", "nano"], recommends=True)
    assert set(weak.names) > set(BASH_NANO)
    assert "bash-completion" in weak.names and "bash-completion" not in plain.names   # bash Recommends it
    assert "libidn2-0" in weak.missing    # libc6 Recommends it; it is not in the sample


# --- the whole archive (not in make test: `pytest -m archive tests/unit/test_debimport.py -s`) ------------------

@pytest.mark.archive
def test_the_whole_suite() -> None:
    """Maps all of bookworm main amd64 and prints the counts (docs/packages/debimport.md); the closure of the
    design's 10 requests and the Essential set agrees with design14 §0 (414 over Depends and Pre-Depends, 3,692
    with Recommends)."""
    if not ARCHIVE.is_file():
        pytest.skip(f"{ARCHIVE} is not here")
    start = time.perf_counter()
    stanzas = parse_stanzas(ARCHIVE.read_bytes(), str(ARCHIVE))
    parsed = time.perf_counter()
    imported = map_stanzas(stanzas)
    mapped = time.perf_counter()
    print(f"\n{imported.report.stanzas:,} stanzas, {imported.report.mapped:,} mapped; "
          f"parse {parsed - start:.1f} s, map {mapped - parsed:.1f} s")
    print("\n".join(imported.report.lines()))
    assert imported.report.mapped == imported.report.stanzas - 1
    essential = [m.name for m in imported.packages if m.essential]
    requests = ["bash", "nano", "openssh-server", "python3", "build-essential", "nginx", "postgresql", "xfce4",
                "postfix", "exim4-daemon-light", *essential]
    assert len(essential) == 23
    assert len(closure(stanzas, requests).names) == 414
    assert len(closure(stanzas, requests, recommends=True).names) == 3692
