"""Tests use the product's code paths (issue 13): no test loads a module from scripts/ (the sample
repository is :mod:`composer.repo.sample`), and the sample checkout names files that exist."""

from __future__ import annotations

import re

from composer.repo.sample import ARCHES, SampleCheckout, checkout_of_this_package
from tests.conftest import REPO

# Still loading a script, being changed by another slice of issue 13; empty it when they are merged.
KNOWN: frozenset[str] = frozenset()  # every test imports composer modules now
LOADS_A_SCRIPT = re.compile(r"""spec_from_file_location\([^)]*["']scripts["']|scripts/\w+\.py["']\)""")


def _loading_scripts() -> set[str]:
    return {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*.py")
            if p.name != "test_tests_layout.py" and LOADS_A_SCRIPT.search(p.read_text())}


def test_no_test_loads_a_script() -> None:
    assert _loading_scripts() - KNOWN == set(), "import the composer module instead of loading scripts/*.py"


def test_known_script_loaders_still_do() -> None:
    assert _loading_scripts() >= KNOWN, f"fixed, remove from KNOWN: {sorted(KNOWN - _loading_scripts())}"


def test_the_pattern_sees_a_script_load() -> None:
    text = 'spec = importlib.util.spec_from_file_location("x", REPO / "scripts" / "sample_repo.py")'
    assert LOADS_A_SCRIPT.search(text)
    assert not LOADS_A_SCRIPT.search("from composer.repo.sample import build_sample_repo")


def test_the_sample_checkout_names_files_that_exist() -> None:
    checkout = SampleCheckout(root=REPO)
    assert checkout_of_this_package().root.resolve() == REPO.resolve()
    assert all(p.exists() for p in checkout.inputs)
    assert checkout.trust_root.is_file()
    for role in ("developer", "targets", "root-1", "root-2", "index", "snapshot", "timestamp"):
        assert checkout.key(role).is_file(), role
    assert ARCHES == ("x86_64", "aarch64", "riscv64")
