"""A real `vcomp build --sign-key` of a tiny profile in a git work tree: the provenance in a DSSE envelope that
`vcomp verify-attestation` and securesystemslib's DSSE implementation (the in-toto project's) both verify, the
profile repository's commit recorded, and both SBOMs of the real build valid for the real validators."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from securesystemslib.dsse import Envelope
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from composer.cli.main import main
from composer.image.outputs import OutputType
from composer.report import dsse
from composer.trust.keys import generate, load_public_key, load_signing_key
from tests.repo_fixtures import ARCH, Repo
from tests.unit.test_output_registry import raw_root, tiny_profile

__all__ = ["raw_root"]  # the fixture, imported for pytest

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


@pytest.fixture()
def built(raw_root: OutputType, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """images/tiny/ARCH of a signed build of a committed profile."""
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    p = tiny_profile(repo, tmp_path, "  - type: raw-root\n    name: root\n")
    subprocess.run([*GIT, "init", "-q"], cwd=p.parent, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=p.parent, check=True)
    subprocess.run([*GIT, "commit", "-qm", "profile"], cwd=p.parent, check=True)
    generate("builder", tmp_path / "keys")
    assert main(["lock", str(p)]) == 0
    images = tmp_path / "images"
    assert main(["build", str(p), "--images", str(images), "--sign-key", str(tmp_path / "keys" / "builder.key")]) == 0
    return images / "tiny" / ARCH


def test_a_signed_build(built: Path, tmp_path: Path) -> None:
    """One build (each takes seconds), every check of it."""
    _signed_provenance_verifies(built, tmp_path)
    _the_profile_commit_is_recorded(built, tmp_path)
    _the_real_build_sboms_validate(built)
    _a_tampered_or_foreign_attestation_fails(built, tmp_path)


def _signed_provenance_verifies(built: Path, tmp_path: Path) -> None:
    pub = tmp_path / "keys" / "builder.pub"
    envelope_path = built / "provenance.intoto.dsse.json"
    assert main(["verify-attestation", str(envelope_path), "--key", str(pub)]) == 0
    envelope = json.loads(envelope_path.read_bytes())
    assert base64.b64decode(envelope["payload"]) == (built / "provenance.intoto.json").read_bytes()
    key = load_public_key(pub)
    assert set(Envelope.from_dict(envelope).verify([key.key], 1)) == {key.keyid}  # securesystemslib's DSSE


def _a_tampered_or_foreign_attestation_fails(built: Path, tmp_path: Path) -> None:
    envelope = json.loads((built / "provenance.intoto.dsse.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(envelope))
    pub = str(tmp_path / "keys" / "builder.pub")
    assert main(["verify-attestation", str(bad), "--key", pub]) != 0
    generate("other", tmp_path / "keys")
    assert main(["verify-attestation", str(built / "provenance.intoto.dsse.json"), "--key",
                 str(tmp_path / "keys" / "other.pub")]) != 0


def _the_profile_commit_is_recorded(built: Path, tmp_path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path / "profile", check=True,
                          capture_output=True, text=True).stdout.strip()
    prov = json.loads((built / "provenance.intoto.json").read_bytes())
    source = prov["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert source["digest"] == {"gitCommit": head}
    assert source["annotations"]["path"] == "tiny.yaml"


def _the_real_build_sboms_validate(built: Path) -> None:
    assert validate_full_spdx_document(parse_file(str(built / "sbom.spdx.json"))) == []
    cdx = (built / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx, all_errors=True) is None


def test_signing_is_deterministic(tmp_path: Path) -> None:
    generate("k", tmp_path)
    key = load_signing_key(tmp_path / "k.key")
    assert dsse.sign(b"{}", key) == dsse.sign(b"{}", key)
    assert dsse.pae("t", b"xy") == b"DSSEv1 1 t 2 xy"
