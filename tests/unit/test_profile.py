"""Profiles: schema and semantic validation, every error with file:line:column; hostile YAML refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import UserError
from composer.profile.load import load_profile
from composer.profile.yamlpos import MAX_BYTES, load_yaml
from tests.conftest import REPO

GOOD = """
name: demo
architectures: [x86_64, aarch64]
repositories:
  - name: sample
    url: ../repo
    root: root.json
packages:
  - busybox
  - name: nano
    version: "^7"
    features: [syntax]
    architectures: [x86_64]
drivers: [virtio-blk]
capabilities: [network]
outputs:
  - type: iso
  - type: disk
    options: {format: qcow2, filesystem: ext4}
boot-tests:
  - name: boots
    outputs: [iso]
    expect: ["VCOMP-BOOT: ready"]
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    (tmp_path / "root.json").write_text("{}")
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def errors_of(path: Path) -> list[str]:
    with pytest.raises(UserError) as info:
        load_profile(path)
    return [line.strip() for line in info.value.message.splitlines()[1:]] or [info.value.message]


def test_sample_profiles_are_valid() -> None:
    for name, arches in (("minimal", ("x86_64", "aarch64", "riscv64")), ("server", ("x86_64", "aarch64", "riscv64"))):
        prof = load_profile(REPO / "profiles" / f"{name}.yaml")
        assert prof.name == name and prof.architectures == arches
        assert prof.repositories[0].root == (REPO / "profiles" / "trust" / "sample-root.json").resolve()


def test_model(tmp_path: Path) -> None:
    prof = load_profile(write(tmp_path, GOOD))
    assert [p.name for p in prof.packages_for("aarch64")] == ["busybox"]
    assert prof.packages[1].requirement == "^7" and prof.packages[1].features == ("syntax",)
    assert prof.repositories[0].url == (tmp_path / "../repo").resolve().as_uri()
    assert [o.name for o in prof.outputs] == ["iso", "disk"] and prof.outputs[1].options["format"] == "qcow2"
    assert len(prof.digest) == 64


def test_three_mistakes_three_errors_with_line_and_column(tmp_path: Path) -> None:
    bad = GOOD.replace("name: demo", "name: Demo!").replace("[x86_64, aarch64]", "[x86_64, sparc]") \
        .replace("type: disk", "type: floppy")
    errs = errors_of(write(tmp_path, bad))
    assert len(errs) == 3, errs
    assert any(e.startswith(f"{tmp_path}/p.yaml:1:1: $.name") for e in errs)
    assert any(e.startswith(f"{tmp_path}/p.yaml:2:25: $.architectures[1]: 'sparc'") for e in errs)
    assert any(e.startswith(f"{tmp_path}/p.yaml:17:5: $.outputs[1].type: 'floppy'") for e in errs)


def test_semantic_errors_all_at_once(tmp_path: Path) -> None:
    bad = GOOD.replace("root: root.json", "root: missing.json") \
        .replace("  - busybox\n", "  - busybox\n  - busybox\n") \
        .replace('version: "^7"', 'version: "^^7"') \
        .replace("outputs: [iso]", "outputs: [cdrom]") \
        .replace("  - type: iso\n", "  - type: iso\n    options: {firmware: [bios]}\n")
    errs = errors_of(write(tmp_path, bad))
    text = "\n".join(errs)
    assert len(errs) == 5, errs
    assert ":6:5: $.repositories[0].root: trust root file" in text and "missing.json does not exist" in text
    assert ":9:5: $.packages[1]: package 'busybox' is requested twice (first at line 8)" in text
    assert ":11:5: $.packages[2].version: invalid version requirement '^^7'" in text
    assert "$.outputs[0].options.firmware: iso on aarch64 cannot boot with bios" in text
    assert "$.boot-tests[0].outputs[0]: no output named 'cdrom'" in text


def test_output_not_available_and_policy(tmp_path: Path) -> None:
    bad = GOOD.replace("[x86_64, aarch64]", "[x86_64, aarch64, riscv64]") \
        .replace("drivers:", "policy: {denied-packages: [busybox]}\ndrivers:")
    text = "\n".join(errors_of(write(tmp_path, bad)))
    assert "output type 'iso' is not available on riscv64" in text
    assert "package 'busybox' is requested but denied by policy.denied-packages" in text


@pytest.mark.parametrize(("content", "expect"), [
    (b"name: a\nname: b\n", r"p.yaml:2:1: duplicate key 'name'"),
    (b"name: [a\n", r"p.yaml:2:1: invalid YAML"),
    (b"a: 1\n---\nb: 2\n", "exactly one YAML document"),
    (b"\xff\xfe", "not UTF-8"),
    (b"- a\n- b\n", "a profile is a mapping"),
    (b"1: x\n", "keys must be strings"),
])
def test_hostile_or_broken_yaml(tmp_path: Path, content: bytes, expect: str) -> None:
    p = tmp_path / "p.yaml"
    p.write_bytes(content)
    with pytest.raises(UserError, match=expect):
        load_profile(p)


def test_alias_bomb_and_oversized_file_are_refused_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quickly, counted rather than timed: the builder visits one node past its budget, then stops (the
    document expands to 10**9 nodes)."""
    from composer.profile import yamlpos
    visits = [0]
    build = yamlpos._Builder.build

    def counting(self: yamlpos._Builder, node: object, path: object) -> object:
        visits[0] += 1
        return build(self, node, path)  # type: ignore[arg-type]
    monkeypatch.setattr(yamlpos._Builder, "build", counting)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(UserError, match="alias bomb"):
        load_yaml("\n".join(lines).encode(), "bomb.yaml")
    assert visits[0] == yamlpos.MAX_NODES + 1
    with pytest.raises(UserError, match="over the limit"):
        load_yaml(b"a: b\n" * (MAX_BYTES // 4), "big.yaml")


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "profiles" / "minimal.yaml"), str(REPO / "profiles" / "server.yaml")]) == 0
    assert capsys.readouterr().out.count(": valid:") == 2
    bad = write(tmp_path, GOOD.replace("type: iso", "type: floppy"))
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "p.yaml:16:5: $.outputs[0].type: 'floppy'" in err and "hint:" in err
