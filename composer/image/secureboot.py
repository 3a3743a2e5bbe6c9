"""UEFI Secure Boot: sign EFI binaries (UKIs) with the profile's key, and enroll its certificate into a copy of
the firmware's variable store so that QEMU boots with Secure Boot enforced (docs/verified-boot.md).

Signing is ``sbsign`` (sbsigntool) through the one subprocess gateway. sbsign puts the wall-clock signing time
into the PKCS#7 signed attributes, so it runs under ``faketime`` frozen at the build's SOURCE_DATE_EPOCH: the
signature (RSA PKCS#1 v1.5, deterministic) and so the signed file are the same bytes for the same inputs. The key
is read by sbsign from where the profile names it; it is never copied into the work directory or an image.

Enrolling is ``virt-fw-vars`` (the ``virt-firmware`` Python package): PK, KEK and db all hold the profile's
certificate (owner GUID :data:`OWNER`) and only it, and the SecureBootEnable variable is set. The template must
be a formatted variable store (Debian 12's AAVMF_VARS.fd is all zeros until the firmware's first boot: aarch64
starts from AAVMF_VARS.ms.fd, whose Microsoft keys are deleted).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ToolError, UserError
from composer.run import require_tool, run

OWNER = uuid.uuid5(uuid.NAMESPACE_URL, "vcomp:secure-boot-owner")   # the owner GUID of the enrolled certificates
MAX_KEY_BYTES = 1 << 20   # a PEM key or certificate (a few KiB): a larger file is not one
ENROLL_TOOL = "virt-fw-vars"
ENROLL_HINT = "install it with: pip install virt-firmware (scripts/setup.sh does), or put it in PATH"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureBootKey:
    """A Secure Boot db key pair: the private key (PEM) and its X.509 certificate (PEM), as the profile names them."""

    key: Path
    certificate: Path

    def check(self, where: str) -> None:
        for what, path in (("key", self.key), ("certificate", self.certificate)):
            if not path.is_file():
                raise UserError(f"{where}: secure-boot {what} {path} does not exist",
                                hint="create a key pair with: vcomp key generate --secure-boot NAME "
                                     "(or use keys/sample/INSECURE-SAMPLE-db.* for tests)")
            if path.stat().st_size > MAX_KEY_BYTES:
                raise UserError(f"{where}: secure-boot {what} {path} is over {MAX_KEY_BYTES} bytes: not a PEM "
                                f"{what}", hint="name the PEM files vcomp key generate --secure-boot wrote")


def sign(data: bytes, key: SecureBootKey, *, epoch: int, work: Path) -> bytes:
    """``data`` (a PE/COFF EFI binary) signed for Secure Boot with ``key``; the same bytes for the same inputs."""
    key.check("signing")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="sbsign-") as tmp:
        src, dst = Path(tmp) / "in.efi", Path(tmp) / "out.efi"
        src.write_bytes(data)
        for tool in ("faketime", "sbsign"):
            require_tool(tool)   # a missing tool keeps its own error: which package to install
        try:
            run(["faketime", "-f", stamp, "sbsign", "--key", key.key, "--cert", key.certificate,
                 "--output", dst, src], env={"TZ": "UTC"})
        except ToolError as exc:
            raise ToolError(f"sbsign could not sign with the secure-boot key {key.key} and certificate "
                            f"{key.certificate}: {exc.message}",
                            hint="the key must be an unencrypted PEM private key and the certificate the PEM "
                                 "certificate of that key (vcomp key generate --secure-boot writes such a pair)"
                            ) from None
        return dst.read_bytes()


def verify(path: Path, certificate: Path) -> bool:
    """Whether the EFI binary at ``path`` carries a valid signature by ``certificate`` (sbverify)."""
    return run(["sbverify", "--cert", certificate, path], check=False).returncode == 0


def enroll_tool() -> str:
    """virt-fw-vars: beside this Python (the project's venv) or in PATH."""
    beside = Path(sys.executable).parent / ENROLL_TOOL
    found = str(beside) if beside.is_file() else shutil.which(ENROLL_TOOL)
    if found is None:
        raise ToolError(f"host tool '{ENROLL_TOOL}' is not installed", hint=ENROLL_HINT)
    return found


def enroll(template: Path, out: Path, certificate: Path) -> Path:
    """A copy of the firmware variables ``template`` at ``out`` with ``certificate`` as PK, KEK and db (and
    nothing else: keys the template holds are deleted first) and Secure Boot enabled."""
    if not certificate.is_file():
        raise UserError(f"secure-boot certificate {certificate} does not exist",
                        hint="name the profile's secure-boot certificate, or pass --secure-boot-cert FILE")
    out.parent.mkdir(parents=True, exist_ok=True)
    owner = str(OWNER)
    clear = [a for var in ("PK", "KEK", "db", "dbx") for a in ("--delete", var)]  # a template's own keys go
    run([enroll_tool(), "--input", template, "--output", out, *clear, "--set-pk", owner, certificate,
         "--add-kek", owner, certificate, "--add-db", owner, certificate, "--secure-boot"])
    return out
