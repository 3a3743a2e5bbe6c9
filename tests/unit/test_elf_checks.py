"""The pure ELF reader, hardening flags, link checks and secret scan (issue 19): each hardening flag on real
binaries compiled by the host gcc with and without it; hostile ELF inputs end as one-line problems, bounded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.package.elfinfo import ElfInfo, Hardening, read_elf
from composer.package.hardening import hardening_report
from composer.package.linkcheck import LinkInfo, abi_breaks, missing_needed, rpath_problems
from composer.package.secrets import bundled_rules, find_secrets, yara_matches

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host gcc")
SRC = '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { char b[64]; strcpy(b, v[0]);\n' \
      'printf("%s %d\\n", b, c); return 0; }\n'


def compiled(tmp_path: Path, *flags: str) -> ElfInfo:
    src = tmp_path / "p.c"
    src.write_text(SRC)
    out = tmp_path / ("p" + "".join(f.replace("-", "_").replace(",", "_").replace("=", "") for f in flags))
    subprocess.run(["gcc", "-O2", *flags, "-o", str(out), str(src)], check=True, capture_output=True)
    info = read_elf(out.read_bytes(), "usr/bin/p")
    assert info is not None and info.hardening is not None and not info.problem
    return info


@needs_gcc
@pytest.mark.parametrize(("flags", "expected"), [
    (("-fPIE", "-pie", "-Wl,-z,relro,-z,now", "-fstack-protector-all", "-D_FORTIFY_SOURCE=2"),
     {"pie": True, "relro": "full", "nx": True, "canary": True, "fortify": True}),
    (("-no-pie", "-fno-PIE", "-Wl,-z,norelro", "-fno-stack-protector", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0",
      "-z", "execstack"),
     {"pie": False, "relro": "none", "nx": False, "canary": False, "fortify": False}),
    (("-fPIE", "-pie", "-Wl,-z,relro,-z,lazy", "-fno-stack-protector", "-D_FORTIFY_SOURCE=2"),
     {"pie": True, "relro": "partial", "nx": True, "canary": False, "fortify": True}),
])
def test_each_hardening_flag_on_compiled_binaries(tmp_path: Path, flags: tuple[str, ...],
                                                  expected: dict[str, object]) -> None:
    h = compiled(tmp_path, *flags).hardening
    assert h is not None
    assert {k: v for k, v in h.to_dict().items() if k not in ("shared", "static")} == expected
    assert not h.static


@needs_gcc
def test_the_score_counts_the_flags(tmp_path: Path) -> None:
    good = compiled(tmp_path, "-fPIE", "-pie", "-Wl,-z,relro,-z,now", "-fstack-protector-all", "-D_FORTIFY_SOURCE=2")
    bad = compiled(tmp_path, "-no-pie", "-fno-PIE", "-Wl,-z,norelro", "-fno-stack-protector", "-D_FORTIFY_SOURCE=0",
                   "-z", "execstack")
    assert hardening_report([good]).score == 100
    assert hardening_report([bad]).score == 0
    assert hardening_report([good, bad]).score == 50
    assert hardening_report([]).score == 100
    assert hardening_report([bad]).findings[0].missing == ("pie", "relro", "nx", "canary", "fortify")


@needs_gcc
def test_a_stripped_static_program_scores_what_can_be_seen(tmp_path: Path) -> None:
    info = compiled(tmp_path, "-static", "-s", "-fstack-protector-all")
    assert info.hardening is not None and info.hardening.static and not info.needed
    report = hardening_report([info])
    assert "canary" not in report.findings[0].missing and "pie" in report.findings[0].missing


def test_the_c_library_defining_the_checks_has_them() -> None:
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists():
        pytest.skip("no x86_64 glibc here")
    h = read_elf(libc.read_bytes(), "usr/lib/x86_64-linux-gnu/libc.so.6")
    assert h is not None and h.hardening is not None
    assert h.hardening.canary and h.hardening.fortify and h.hardening.shared and h.soname == "libc.so.6"


@given(st.binary(max_size=512))
@settings(max_examples=300, deadline=None)
def test_hostile_bytes_after_the_magic_end_as_a_problem_or_none(tail: bytes) -> None:
    for head in (b"\x7fELF\x02\x01\x01\x00", b"\x7fELF\x01\x02\x01\x00", b"\x7fELF"):
        info = read_elf(head + tail, "x")
        assert info is None or isinstance(info, ElfInfo)
        if info is not None and info.problem:
            assert "\n" not in info.problem and len(info.problem) < 200


@needs_gcc
def test_a_truncated_or_corrupted_real_binary_is_a_problem_not_a_traceback() -> None:
    data = Path(shutil.which("gcc") or "/bin/true").read_bytes()
    for cut in (64, 200, 1000, len(data) // 2):
        info = read_elf(data[:cut], "x")
        assert info is None or isinstance(info, ElfInfo)
    broken = bytearray(data)
    broken[0x20:0x28] = b"\xff" * 8   # e_phoff far beyond the file
    info = read_elf(bytes(broken), "x")
    assert info is None or info.problem


def test_not_elf_is_none() -> None:
    assert read_elf(b"#!/bin/sh\n", "x") is None


def test_missing_needed_and_abi_breaks() -> None:
    app = LinkInfo(needed={"usr/bin/a": ("libc.so.6", "libx.so.1")})
    libc = LinkInfo(sonames=("libc.so.6",))
    assert [(m.path, m.soname) for m in missing_needed({"a": app}, [libc])] == [("usr/bin/a", "libx.so.1")]
    assert missing_needed({"a": app}, [libc, LinkInfo(sonames=("libx.so.1",))]) == []
    breaks = abi_breaks({"libx.so.1": frozenset({"f", "g"})}, {"libx.so.1": frozenset({"f", "h"})})
    assert [(b.soname, b.dropped) for b in breaks] == [("libx.so.1", ("g",))]
    renamed = abi_breaks({"libx.so.1": frozenset({"f"})}, {"libx.so.2": frozenset({"f"})})
    assert renamed[0].renamed_to == "libx.so.2" and "gone" in renamed[0].describe()


def test_rpath_sanity() -> None:
    def info(*rpath: str) -> ElfInfo:
        return ElfInfo(path="usr/lib/app/bin/x", elf_class=64, machine="EM_X86_64", type="ET_DYN", interpreter=True,
                       runpath=rpath, hardening=Hardening(pie=True, relro="full", nx=True, canary=True, fortify=True))
    assert rpath_problems(info("$ORIGIN/../lib", "/usr/lib/app")) == []
    assert len(rpath_problems(info("$ORIGIN/../../../../../etc"))) == 1
    assert "relative" in rpath_problems(info("lib"))[0]
    assert "build path" in rpath_problems(info("/home/builder/src/lib"))[0]
    assert "build path" in rpath_problems(info("/tmp/build"))[0]


def test_secrets_need_a_body_and_tokens_their_shape() -> None:
    body = b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" * 2
    assert [m.kind for m in find_secrets(b"-----BEGIN PRIVATE KEY-----\n" + body, "k")] == ["pem-private-key"]
    assert find_secrets(b"PEM marker: -----BEGIN PRIVATE KEY-----", "libcrypto") == []
    assert [m.kind for m in find_secrets(b"key=AKIAIOSFODNN7EXAMPLE\n", "c")] == ["aws-access-key-id"]
    assert find_secrets(b"xAKIAIOSFODNN7EXAMPLEZZ", "c") == []
    assert [m.kind for m in find_secrets(b"ghp_" + b"a" * 36, "t")] == ["github-token"]
    assert find_secrets(b"A" * (2 << 20) + b"ghp_" + b"a" * 36, "big") == []   # past the scanned prefix


def test_the_bundled_yara_rules() -> None:
    rules = bundled_rules()
    if rules is None:
        pytest.skip("yara-python is not installed")
    eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    assert [m.kind for m in yara_matches(rules, eicar, "e")] == ["yara:eicar_test_file"]
    assert yara_matches(rules, b"#!/bin/sh\necho hello\n", "s") == []


@pytest.mark.parametrize("elf", ["x", {"sonames": "libc.so.6"}, {"sonames": [1]}, {"needed": {"a": "libc.so.6"}},
                                 {"needed": []}])
def test_a_malformed_elf_table_in_an_index_is_refused(elf: object) -> None:
    import json

    import zstandard

    from composer.errors import VerificationError
    from composer.repo.index import decode_index
    entry: dict[str, object] = {k: "" for k in ("name", "version", "arch", "type", "description", "license",
                                                "sha256", "path", "signer")}
    entry.update(dependencies={}, provides=[], conflicts=[], features={}, capabilities={}, driver={}, size=1,
                 installed_size=1, elf=elf)
    data = zstandard.ZstdCompressor().compress(json.dumps({"format": 2, "packages": [entry]}).encode())
    with pytest.raises(VerificationError, match=r"malformed index: packages\[0\]: 'elf"):
        decode_index(data, "index/x86_64.json.zst")


@needs_gcc
def test_mutated_real_libraries_never_raise(tmp_path: Path) -> None:
    import random
    src = tmp_path / "l.c"
    src.write_text("int f(void) { return 1; }\nint g = 2;\n")
    lib = tmp_path / "l.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libl.so.1", "-o", str(lib), str(src)], check=True)
    data = lib.read_bytes()
    rng = random.Random(19)
    for _ in range(400):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        info = read_elf(bytes(mutated), "usr/lib/l.so")
        assert info is None or isinstance(info, ElfInfo)


def test_the_policy_table_reports_every_problem_at_once() -> None:
    from composer.errors import UserError
    from composer.repo.elfgate import RepoPolicy
    p = RepoPolicy.from_dict({"secrets": "deny", "hardening-min": 60}, "repo.toml")
    assert p.action("secrets") == "deny" and p.action("needed") == "warn" and p.hardening_min == 60
    assert RepoPolicy.from_dict(p.to_dict(), "x") == p
    with pytest.raises(UserError) as info:
        RepoPolicy.from_dict({"secrets": "block", "hardening-min": 101, "colour": 1}, "repo.toml")
    message = info.value.message
    assert "policy.secrets = 'block' is not one of deny, warn, allow" in message
    assert "policy.hardening-min = 101" in message and "policy.colour is not a policy key" in message


def test_a_repository_rule_file_that_does_not_compile_names_itself(tmp_path: Path) -> None:
    from composer.errors import UserError
    from composer.package.secrets import RULES_DIR, compile_rules, yara_available
    if not yara_available():
        pytest.skip("yara-python is not installed")
    bad = tmp_path / "site.yar"
    bad.write_text("rule broken { condition: nope }\n")
    with pytest.raises(UserError, match="site.yar"):
        compile_rules([*sorted(RULES_DIR.glob("*.yar")), bad])
    with pytest.raises(UserError, match="no such YARA rule file"):
        compile_rules([tmp_path / "missing.yar"])
    good = tmp_path / "ok.yar"
    good.write_text('rule site_marker { strings: $a = "VCOMP-SITE-MARKER" condition: $a }\n')
    rules = compile_rules([*sorted(RULES_DIR.glob("*.yar")), good])
    assert [m.kind for m in yara_matches(rules, b"xx VCOMP-SITE-MARKER", "f")] == ["yara:site_marker"]


def test_the_bundled_rules_do_not_match_the_files_that_ship_them() -> None:
    """vpk ships composer/ (rules included) and the whole source tree: neither may trip the bundled rules."""
    from composer.package.secrets import RULES_DIR, bundled_rules
    rules = bundled_rules()
    if rules is None:
        pytest.skip("yara-python is not installed")
    shipped = [p for d in (RULES_DIR.parents[1],) for p in sorted(d.rglob("*")) if p.is_file()]
    assert [str(p) for p in shipped if rules.match(data=p.read_bytes())] == []
    assert [m.rule for m in rules.match(data=b"pool=stratum+tcp://x.example:3333 --donate-level 1")] == \
        ["cryptominer_pool"]
