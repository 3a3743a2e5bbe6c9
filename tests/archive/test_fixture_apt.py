"""apt's answers on the committed trimmed fixture, recorded again and compared (marker ``archive``).

- ``test_expected_json_is_apts_answer_on_the_fixture``: apt on the trimmed file (a ``file:`` source, no
  network; ~0.1 s per request on this machine) must give expected.json's answers.
- ``test_the_trimmed_file_answers_as_the_whole_suite``: apt on the WHOLE bookworm main amd64 index (fetched
  through DebianArchive: network) gives the same answers, i.e. the trim lost nothing apt needs. Skipped
  when the suite has moved on since the fixture was cut (its Packages sha256 differs): run make debian-fixture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from composer import settings
from composer.arch import get_arch
from composer.package import debfixture as fx
from composer.package.debian import DebianArchive
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "data" / "debian-bookworm-amd64"
ARCH = get_arch("x86_64")

pytestmark = pytest.mark.archive


def _expected() -> dict[str, Any]:
    data = json.loads((FIXTURE / "expected.json").read_text())
    assert isinstance(data, dict)
    return data


def _fixture(text: str, essential: list[str]) -> fx.Fixture:
    count = text.count("\nPackage: ") + text.startswith("Package: ")
    return fx.Fixture(text=text, packages=count, source_packages=count, essential=tuple(essential))


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """An answer without apt's prose, keeping its facts: exit, Inst rows, providers, the unmet lines."""
    facts = {k: v for k, v in record.items() if k != "message"}
    facts["unmet"] = sorted(line.strip() for line in str(record.get("message", "")).splitlines()
                            if line.startswith(" ") and ":" in line)
    return facts


def test_expected_json_is_apts_answer_on_the_fixture(tmp_path: Path) -> None:
    expected = _expected()
    text = fx.decompress((FIXTURE / "Packages.zst").read_bytes(), limit=8 << 20)
    again = fx.record_expected(_fixture(text, expected["essential"]), tmp_path / "apt", ARCH)
    assert list(again["requests"]) == list(expected["requests"])
    for label, record in expected["requests"].items():
        assert _comparable(again["requests"][label]) == _comparable(record), label


def test_the_trimmed_file_answers_as_the_whole_suite(tmp_path: Path) -> None:
    expected = _expected()
    packages, _ = fx.archive_packages(DebianArchive(settings.cache_dir(), suite=fx.FIXTURE_SUITE), ARCH)
    recorded = expected.get("source", {}).get("packages-sha256", "")
    if hashlib.sha256(packages).hexdigest() != recorded:
        pytest.skip("bookworm main amd64 changed since the fixture was cut: regenerate it (make debian-fixture)")
    whole = fx.record_expected(_fixture(packages.decode(), expected["essential"]), tmp_path / "apt", ARCH)
    for label, record in expected["requests"].items():
        assert _comparable(whole["requests"][label]) == _comparable(record), label
