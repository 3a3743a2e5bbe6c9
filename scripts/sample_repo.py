"""Build the sample package set with the committed sample developer key and publish it into a sample
repository (images/repo by default) whose root is the committed profiles/trust/sample-root.json.

A thin entry point for `make demo`: the work is :func:`composer.repo.sample.build_sample_repo`, the code the
tests run too.

Then the Debian closure of the server profile (openssh-server, python3, nginx) is imported for every sample
architecture and published beside it, in REPO_DIR/../debian (composer.repo.debianset).

usage: python scripts/sample_repo.py [REPO_DIR] [PACKAGES_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout, build_sample_repo

REPO = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    repo_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "images" / "repo"
    packages_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "images" / "packages"
    build_sample_repo(repo_dir, packages_dir, checkout=SampleCheckout(root=REPO), say=print)
    # The Debian closure profiles/server.yaml uses, beside it (images/debian; docs/packages/closures.md).
    start = time.monotonic()
    build_debian_repo(repo_dir.parent / "debian", packages_dir.parent / "debian-packages",
                      checkout=SampleCheckout(root=REPO), say=print)
    print(f"   the Debian closure imported and published in {time.monotonic() - start:.0f} s")
