"""Secure Boot key pairs: an RSA 2048 private key and its self-signed X.509 certificate (the db key a profile's
``secure-boot`` names; ``vcomp key generate --secure-boot``). RSA, because UEFI firmware verifies Authenticode
signatures with RSA-2048/SHA-256 (docs/verified-boot.md)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from composer.errors import UserError
from composer.fsutil import atomic_write

VALID_DAYS = 36500   # firmware does not check validity periods; a long one never expires under a test


def generate_secure_boot(name: str, directory: Path, *, common_name: str = "", force: bool = False,
                         now: datetime.datetime | None = None) -> tuple[Path, Path]:
    """Write DIR/NAME.key (PEM PKCS#8, unencrypted: sbsign reads it, 0600) and DIR/NAME.crt (PEM)."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"invalid key name '{name}'", hint="use a plain file name such as 'db'")
    key_path, crt_path = directory / f"{name}.key", directory / f"{name}.crt"
    for p in (key_path, crt_path):
        if p.exists() and not force:
            raise UserError(f"{p} already exists", hint="pick another name or pass --force to replace it")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"{name} Secure Boot db key")])
    start = now or datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=VALID_DAYS))
            # as `openssl req -x509` writes it (what the firmware is known to accept as PK, KEK and db)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(private.public_key()), critical=False)
            .sign(private, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(key_path, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    atomic_write(crt_path, cert.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path
