"""ed25519 developer and role keys.

A key id is TUF's: the sha256 of the canonical JSON form of the public key
(``{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": HEX}}``), computed by
securesystemslib so repository metadata and packages name keys the same way.
"""

from __future__ import annotations

import base64
import getpass
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
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


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Ask = Callable[[Path], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """A private key file and, optionally, the environment variable holding its passphrase
    (written ``KEYFILE:VAR`` on the command line and in repo.toml)."""
    path: Path
    passphrase_env: str | None = None


def parse_key_spec(text: str, *, base: Path | None = None) -> KeySpec:
    """``KEYFILE`` or ``KEYFILE:VAR``; a relative KEYFILE is taken relative to ``base`` when given.

    The suffix is a variable only when it is a valid variable name and the whole text is not an existing file.
    """
    path_text, env = text, None
    head, sep, tail = text.rpartition(":")
    if sep and head and _ENV_NAME.fullmatch(tail) and not Path(text).exists():
        path_text, env = head, tail
    path = Path(path_text)
    if base is not None and not path.is_absolute():
        path = base / path
    return KeySpec(path=path, passphrase_env=env)


def tty_prompt(path: Path) -> str | None:
    """Ask for the passphrase of ``path`` on the terminal (getpass); None when stdin is not a terminal."""
    if not sys.stdin.isatty():
        return None
    try:
        return getpass.getpass(f"passphrase for {path}: ")
    except (EOFError, KeyboardInterrupt):
        return None


def ask_new_passphrase(path: Path) -> str:
    """A new passphrase for ``path``, typed twice on the terminal (getpass; never echoed nor logged)."""
    if not sys.stdin.isatty():
        raise UserError(f"{path}: no terminal to ask a passphrase on",
                        hint="pass --passphrase-env VAR with the passphrase in the environment variable VAR")
    try:
        first = getpass.getpass(f"new passphrase for {path}: ")
        second = getpass.getpass("the same passphrase again: ")
    except (EOFError, KeyboardInterrupt):
        raise UserError(f"{path}: no passphrase given; no key written", hint="run it again") from None
    if not first:
        raise UserError(f"{path}: an empty passphrase; no key written",
                        hint="type a passphrase, or leave out --passphrase for an unencrypted key")
    if first != second:
        raise UserError(f"{path}: the two passphrases differ; no key written", hint="run it again")
    return first


def load_key_spec(text: str, *, base: Path | None = None, ask: Ask = tty_prompt) -> SigningKey:
    """The private key named by ``KEYFILE`` or ``KEYFILE:VAR`` (see :func:`parse_key_spec`)."""
    spec = parse_key_spec(text, base=base)
    return load_signing_key(spec.path, passphrase_env=spec.passphrase_env, ask=ask)


def load_signing_key(path: Path, *, passphrase_env: str | None = None, ask: Ask = tty_prompt) -> SigningKey:
    """A private key; an encrypted one's passphrase comes from ``passphrase_env`` when named, else from
    $VCOMP_KEY_PASSPHRASE when set, else from ``ask`` (a getpass prompt on a terminal)."""
    data = _read(path, "private key")
    key = _decrypt(path, data, None, "")
    if key is None:
        source, passphrase = _passphrase(path, passphrase_env, ask)
        key = _decrypt(path, data, passphrase.encode(), source)
        if key is None:  # pragma: no cover - a password was given, so cryptography never asks for one
            raise UserError(f"{path}: cannot decrypt the private key", hint="check the passphrase")
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an ed25519 key", hint="generate one with: vcomp key generate NAME")
    return SigningKey(private=key, public=public_from_crypto(key.public_key()))


def _decrypt(path: Path, data: bytes, password: bytes | None, source: str) -> PrivateKeyTypes | None:
    """The key, or None when it is encrypted and no password was given."""
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError:
        return None
    except ValueError:
        if source:
            raise UserError(f"{path}: wrong passphrase (from {source})",
                            hint="check the passphrase of this key; each key can have its own: KEYFILE:VAR") \
                from None
        raise UserError(f"{path}: not a PEM private key",
                        hint="pass the .key file written by 'vcomp key generate'") from None


def _passphrase(path: Path, passphrase_env: str | None, ask: Ask) -> tuple[str, str]:
    """(where it came from, the passphrase) for the encrypted key ``path``."""
    if passphrase_env:
        value = settings.passphrase(passphrase_env)
        if value is None:
            raise UserError(f"{path}: the private key is encrypted and ${passphrase_env} is not set",
                            hint=f"export {passphrase_env} with its passphrase, or name the key without "
                                 f"':{passphrase_env}' to be asked on a terminal")
        return f"${passphrase_env}", value
    shared = settings.passphrase()
    if shared is not None:
        return f"${PASSPHRASE_ENV}", shared
    asked = ask(path)
    if asked is None:
        raise UserError(f"{path}: the private key is encrypted and no passphrase was given (stdin is not a "
                        "terminal, so vcomp cannot ask)",
                        hint=f"name the variable that holds its passphrase after the file: {path}:VAR "
                             f"(e.g. --root-key {path}:ALICE_PASSPHRASE), or run it on a terminal")
    return "the prompt", asked


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
