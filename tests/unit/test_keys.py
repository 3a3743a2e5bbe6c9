"""Keys: files on disk, passphrases, and key ids that match TUF's."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import UserError
from composer.trust.keys import generate, load_public_key, load_signing_key


def test_generate_writes_pem_pair_and_private_is_0600(tmp_path: Path) -> None:
    key, pub, keyid = generate("alice", tmp_path)
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert load_signing_key(key).keyid == load_public_key(pub).keyid == keyid


def test_key_id_is_sha256_of_tuf_canonical_public_key(tmp_path: Path) -> None:
    _, pub, keyid = generate("bob", tmp_path)
    raw_hex = load_public_key(pub).key.keyval["public"]
    canonical = json.dumps({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw_hex}},
                           sort_keys=True, separators=(",", ":")).encode()
    assert keyid == hashlib.sha256(canonical).hexdigest()


def test_sign_and_verify(tmp_path: Path) -> None:
    generate("a", tmp_path)
    generate("b", tmp_path)
    a = load_signing_key(tmp_path / "a.key")
    sig = a.sign(b"data")
    assert a.public.verify(sig, b"data")
    assert not a.public.verify(sig, b"datA")
    assert not load_public_key(tmp_path / "b.pub").verify(sig, b"data")
    assert not a.public.verify("ed25519:not-base64!", b"data")


def test_passphrase_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PASS", "correct horse")
    assert main(["key", "generate", "enc", "--dir", str(tmp_path), "--passphrase-env", "MY_PASS"]) == 0
    assert b"ENCRYPTED" in (tmp_path / "enc.key").read_bytes()
    with pytest.raises(UserError, match="encrypted"):
        load_signing_key(tmp_path / "enc.key")
    monkeypatch.setenv("VCOMP_KEY_PASSPHRASE", "wrong")
    with pytest.raises(UserError, match="passphrase"):
        load_signing_key(tmp_path / "enc.key")
    assert load_signing_key(tmp_path / "enc.key", passphrase_env="MY_PASS").keyid


def test_refuses_to_overwrite_and_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate("dup", tmp_path)
    assert main(["key", "generate", "dup", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "junk.pub").write_text("nonsense")
    with pytest.raises(UserError, match="not a PEM public key"):
        load_public_key(tmp_path / "junk.pub")
    with pytest.raises(UserError, match="private key; pass the .pub"):
        load_public_key(tmp_path / "dup.key")
    with pytest.raises(UserError, match="cannot read"):
        load_signing_key(tmp_path / "missing.key")


def test_key_id_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, pub, keyid = generate("c", tmp_path)
    assert main(["key", "id", str(pub)]) == 0
    assert capsys.readouterr().out.strip() == keyid


def test_passphrase_typed_twice_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`key generate --passphrase` asks twice (getpass); different answers, an empty one or no terminal write no
    key; an unset --passphrase-env variable is an error, never an unencrypted key."""
    import getpass
    import sys
    answers: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": answers.pop(0))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers[:] = ["s3cret", "s3cret"]
    assert main(["key", "generate", "typed", "--dir", str(tmp_path), "--passphrase"]) == 0
    monkeypatch.setenv("TYPED", "s3cret")
    assert load_signing_key(tmp_path / "typed.key", passphrase_env="TYPED").keyid
    for given, why in ((["a", "b"], "the two passphrases differ"), (["", ""], "an empty passphrase")):
        answers[:] = given
        assert main(["key", "generate", "other", "--dir", str(tmp_path), "--passphrase"]) == 1
        assert why in capsys.readouterr().err
        assert not (tmp_path / "other.key").exists()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["key", "generate", "other", "--dir", str(tmp_path), "--passphrase"]) == 1
    assert "no terminal" in capsys.readouterr().err and not (tmp_path / "other.key").exists()
    monkeypatch.delenv("UNSET_PASS", raising=False)
    assert main(["key", "generate", "other", "--dir", str(tmp_path), "--passphrase-env", "UNSET_PASS"]) == 1
    assert "unset or empty" in capsys.readouterr().err and not (tmp_path / "other.key").exists()
