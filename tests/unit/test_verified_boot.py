"""The verified boot chain's host side (docs/verified-boot.md): deterministic Secure Boot signatures that the
firmware's certificate verifies and another does not, a dm-verity tree whose root hash changes with one byte,
the profile's secure-boot key, and the QEMU command of a Secure Boot boot. Real sbsign, veritysetup and
virt-fw-vars; no QEMU."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import sys
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot.machine import Boot, command
from composer.boot.session import enforced_certificate, secure_boot_certificate
from composer.errors import ToolError, UserError
from composer.image.formats import verity
from composer.image.secureboot import SecureBootKey, sign, verify
from composer.profile.load import load_profile, profile_of
from composer.trust.sbkeys import generate_secure_boot
from tests.conftest import REPO

KEYS = REPO / "keys" / "sample"
DB = SecureBootKey(key=KEYS / "INSECURE-SAMPLE-db.key", certificate=KEYS / "INSECURE-SAMPLE-db.crt")
OTHER = KEYS / "INSECURE-SAMPLE-other-db.crt"
needs = pytest.mark.skipif(not all(shutil.which(t) for t in ("sbsign", "faketime", "veritysetup")),
                           reason="needs sbsigntool, faketime and cryptsetup-bin (scripts/setup.sh)")


def stub() -> bytes:
    """A tiny valid PE32+ EFI application (one .text section of ``ret``): what sbsign needs to sign."""
    dos = b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 240, 0x0022)
    optional = struct.pack("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", 0x20B, 0, 0, 0x200, 0, 0, 0x1000, 0x1000, 0,
                           0x1000, 0x200, 0, 0, 0, 0, 0, 0, 0, 0x2000, 0x200, 0, 10, 0,
                           0x10000, 0x1000, 0x10000, 0x1000, 0, 16) + bytes(16 * 8)
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x200, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    headers = dos + coff + optional + section
    return headers + bytes(0x200 - len(headers)) + b"\xc3" * 0x200


@needs
def test_signing_is_deterministic_and_only_the_signing_certificate_verifies(tmp_path: Path) -> None:
    data = stub()
    one = sign(data, DB, epoch=1_700_000_000, work=tmp_path / "a")
    two = sign(data, DB, epoch=1_700_000_000, work=tmp_path / "b")
    assert one == two, "sbsign's signing time is frozen at the build's epoch: the same bytes"
    (tmp_path / "s.efi").write_bytes(one)
    assert verify(tmp_path / "s.efi", DB.certificate)
    assert not verify(tmp_path / "s.efi", OTHER)
    assert not list(tmp_path.rglob("*.key")), "the key is never copied into the work directory"


def test_a_missing_key_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="secure-boot key .* does not exist"):
        sign(b"MZ", SecureBootKey(key=tmp_path / "no.key", certificate=DB.certificate), epoch=0, work=tmp_path)


@needs
def test_the_verity_tree_is_deterministic_and_one_byte_changes_the_root_hash(tmp_path: Path) -> None:
    data = tmp_path / "root.img"
    data.write_bytes(bytes(range(256)) * 100)        # not a whole number of blocks: padded
    copy = tmp_path / "copy.img"
    shutil.copyfile(data, copy)
    a = verity.format_tree(data, tmp_path / "a.hash", seed="s")
    b = verity.format_tree(copy, tmp_path / "b.hash", seed="s")
    assert a == b and (tmp_path / "a.hash").read_bytes() == (tmp_path / "b.hash").read_bytes()
    assert data.stat().st_size % verity.BLOCK == 0 and a.data_blocks == data.stat().st_size // verity.BLOCK
    with copy.open("r+b") as f:
        f.seek(5000)
        f.write(b"\xff")
    c = verity.format_tree(copy, tmp_path / "c.hash", seed="s")
    assert c.root_hash != a.root_hash
    word = a.cmdline_word("/dev/vda2", "/dev/vda3")
    assert word == f"vcomp.verity=/dev/vda2,/dev/vda3,{a.data_blocks},{a.root_hash},{a.salt}"
    assert a.table("/dev/vda2", "/dev/vda3").startswith(f"0 {a.data_blocks * 8} verity 1 /dev/vda2 /dev/vda3 4096")


def test_the_profile_names_its_secure_boot_key_relative_to_itself() -> None:
    p = load_profile(REPO / "profiles" / "verified.yaml")
    assert p.secure_boot is not None
    assert p.secure_boot.key_path == DB.key and p.secure_boot.certificate_path == DB.certificate
    assert p.to_dict()["secure-boot"] == {"key": "../keys/sample/INSECURE-SAMPLE-db.key",
                                          "certificate": "../keys/sample/INSECURE-SAMPLE-db.crt"}


def test_a_secure_boot_boot_uses_the_smm_firmware_with_the_certificate_enrolled(tmp_path: Path) -> None:
    if shutil.which("virt-fw-vars") is None and not (Path(sys.executable).parent / "virt-fw-vars").is_file():
        pytest.skip("needs virt-fw-vars (pip install virt-firmware)")
    if not Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd").is_file():
        pytest.skip("needs ovmf")
    boot = Boot(arch=get_arch("x86_64"), files=(tmp_path / "disk.raw",), media="disk", firmware="uefi",
                work=tmp_path, secure_boot=DB.certificate)
    cmd = command(boot, network=False)
    assert cmd[cmd.index("-M") + 1] == "q35,smm=on"
    assert "driver=cfi.pflash01,property=secure,value=on" in cmd
    assert any("OVMF_CODE_4M.secboot.fd" in a for a in cmd)
    enrolled = (tmp_path / "x86_64-vars.fd").read_bytes()
    assert enrolled != Path("/usr/share/OVMF/OVMF_VARS_4M.fd").read_bytes()
    plain = command(dataclasses.replace(boot, secure_boot=None), network=False)
    assert plain[plain.index("-M") + 1] == "pc"


def test_secure_boot_needs_uefi(tmp_path: Path) -> None:
    boot = Boot(arch=get_arch("x86_64"), files=(tmp_path / "disk.raw",), media="disk", firmware="bios",
                work=tmp_path, secure_boot=DB.certificate)
    with pytest.raises(UserError, match="Secure Boot"):
        command(boot, network=False)


@needs
def test_a_generated_secure_boot_key_signs_and_its_certificate_verifies(tmp_path: Path) -> None:
    key, crt = generate_secure_boot("db", tmp_path / "keys")
    assert key.stat().st_mode & 0o777 == 0o600 and b"CERTIFICATE" in crt.read_bytes()
    signed = tmp_path / "s.efi"
    signed.write_bytes(sign(stub(), SecureBootKey(key=key, certificate=crt), epoch=0, work=tmp_path / "w"))
    assert verify(signed, crt) and not verify(signed, DB.certificate)
    with pytest.raises(UserError, match="already exists"):
        generate_secure_boot("db", tmp_path / "keys")


def test_a_verity_disk_without_the_driver_or_dmsetup_is_refused_at_validation() -> None:
    text = (REPO / "profiles" / "verified.yaml").read_text()
    bad = text.replace("  - dmsetup\n", "").replace("drivers: [virtio-blk, ext4, dm-verity]", "drivers: [virtio-blk]")
    with pytest.raises(UserError) as exc:
        profile_of(bad.encode(), REPO / "profiles" / "bad.yaml")
    message = str(exc.value) + " ".join(str(e) for e in getattr(exc.value, "errors", ()))
    assert "needs the dm-verity driver" in message and "needs dmsetup" in message


@needs
def test_a_certificate_of_another_key_is_one_clear_signing_error(tmp_path: Path) -> None:
    mismatched = SecureBootKey(key=DB.key, certificate=OTHER)
    with pytest.raises(ToolError, match="sbsign could not sign with the secure-boot key") as exc:
        sign(stub(), mismatched, epoch=0, work=tmp_path)
    assert "certificate of that key" in exc.value.hint


def test_vcomp_test_and_reconcile_enforce_secure_boot_for_a_signed_build(tmp_path: Path) -> None:
    signed = {"arch": "x86_64", "secure-boot": {"certificate": "secure-boot-db.crt", "sha256": "0" * 64}}
    assert enforced_certificate(signed, tmp_path, "uefi") == tmp_path / "secure-boot-db.crt"
    assert enforced_certificate(signed, tmp_path, "bios") is None
    assert enforced_certificate({**signed, "arch": "riscv64"}, tmp_path, "uefi") is None, "U-Boot: no Secure Boot"
    assert enforced_certificate({"arch": "x86_64"}, tmp_path, "uefi") is None
    with pytest.raises(UserError, match="not signed for Secure Boot"):
        secure_boot_certificate({"arch": "x86_64"}, tmp_path, None)
