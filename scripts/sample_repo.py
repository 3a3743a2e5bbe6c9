"""Build the sample package set with the committed sample developer key and publish it into a sample
repository (images/repo by default) whose root is the committed profiles/trust/sample-root.json.

A thin entry point for `make demo`: the work is :func:`composer.repo.sample.build_sample_repo`, the code the
tests run too.

usage: python scripts/sample_repo.py [REPO_DIR] [PACKAGES_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from composer.repo.sample import SampleCheckout, build_sample_repo

REPO = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    repo_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "images" / "repo"
    packages_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "images" / "packages"
    build_sample_repo(repo_dir, packages_dir, checkout=SampleCheckout(root=REPO), say=print)
