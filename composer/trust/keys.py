"""ed25519 developer and role keys.

A key id is TUF's: the sha256 of the canonical JSON form of the public key
(``{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": HEX}}``), computed by
securesystemslib so repository metadata and packages name keys the same way.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.signer import CryptoSigner, SSlibKey

from composer import settings
from composer.errors import UserError, VerificationError
from composer.fsutil import atomic_write

PASSPHRASE_ENV = settings.KEY_PASSPHRASE.name
SIGNATURE_PREFIX = "ed25519:"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKey:
    key: SSlibKey

    @property
    def keyid(self) -> str:
        return str(self.key.keyid)

    @property
    def crypto(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.key.keyval["public"]))

    def verify(self, signature: str, data: bytes) -> bool:
        if not signature.startswith(SIGNATURE_PREFIX):
            return False
        try:
            raw = base64.b64decode(signature[len(SIGNATURE_PREFIX):], validate=True)
            self.crypto.verify(raw, data)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: PublicKey

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, data: bytes) -> str:
        return SIGNATURE_PREFIX + base64.b64encode(self.private.sign(data)).decode()

    def tuf_signer(self) -> CryptoSigner:
        """A securesystemslib signer for TUF metadata (used by the repository)."""
        return CryptoSigner(self.private, self.public.key)


def public_from_crypto(pub: Ed25519PublicKey) -> PublicKey:
    return PublicKey(key=SSlibKey.from_crypto(pub))


def generate(name: str, directory: Path, *, passphrase: str | None = None,
             force: bool = False) -> tuple[Path, Path, str]:
    """Write DIR/NAME.key (PEM PKCS#8, 0600) and DIR/NAME.pub; return paths and key id."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"invalid key name '{name}'", hint="use a plain file name such as 'alice'")
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    for p in (key_path, pub_path):
        if p.exists() and not force:
            raise UserError(f"{p} already exists", hint="pick another name or pass --force to replace it")
    private = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
        else serialization.NoEncryption())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(key_path, pem)
    os.chmod(key_path, 0o600)
    atomic_write(pub_path, pub_pem)
    return key_path, pub_path, public_from_crypto(private.public_key()).keyid


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}",
                        hint="generate one with: vcomp key generate NAME") from None


def load_signing_key(path: Path, *, passphrase_env: str = PASSPHRASE_ENV) -> SigningKey:
    data = _read(path, "private key")
    passphrase = settings.passphrase(passphrase_env)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except TypeError:
        raise UserError(f"{path}: the private key is encrypted",
                        hint=f"set {passphrase_env} to its passphrase") from None
    except ValueError:
        raise UserError(f"{path}: not a PEM private key, or the passphrase in {passphrase_env} is wrong",
                        hint="pass the .key file written by 'vcomp key generate'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an ed25519 key", hint="generate one with: vcomp key generate NAME")
    return SigningKey(private=key, public=public_from_crypto(key.public_key()))


def load_public_key(path: Path) -> PublicKey:
    data = _read(path, "public key")
    try:
        if b"PRIVATE KEY" in data:
            raise UserError(f"{path}: this is a private key; pass the .pub file",
                            hint="public keys are the NAME.pub files")
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise UserError(f"{path}: not a PEM public key", hint="pass the .pub file written by 'vcomp key generate'") \
            from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path}: not an ed25519 public key", hint="generate one with: vcomp key generate NAME")
    return public_from_crypto(key)


def require_valid(pub: PublicKey, signature: str, data: bytes, *, what: str) -> None:
    if not pub.verify(signature, data):
        raise VerificationError(f"{what}: signature does not verify with key {pub.keyid[:16]}",
                                hint="the package was modified after signing, or was signed by another key")
