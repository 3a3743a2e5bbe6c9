"""Debian copyright files as SPDX expressions (composer/package/dep5.py), on real files of the Debian cache
(tests/data/dep5: trixie's, verbatim) and on the DEP-5 short-name grammar."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer import spdx as licenses
from composer.package import dep5

DATA = Path(__file__).resolve().parents[1] / "data" / "dep5"
REAL = {
    "nano": "GPL-3.0-or-later AND (LicenseRef-Debian-GFDL-NIV-plus OR GPL-3.0-or-later)",
    "libtinfo6": "BSD-3-Clause AND LicenseRef-Debian-MIT-X11 AND X11",
    "systemd-boot-efi": "CC0-1.0 AND GPL-2.0-only WITH Linux-syscall-note AND GPL-2.0-or-later AND "
                        "LGPL-2.1-or-later AND LicenseRef-Debian-public-domain AND MIT",
    "linux-image-amd64": "GPL-2.0-only AND (GPL-2.0-only OR BSD-2-Clause) AND (GPL-2.0-or-later OR X11) AND "
                         "LGPL-2.1-only AND (LGPL-2.1-only OR BSD-2-Clause) AND LicenseRef-Debian-Unicode-data AND "
                         "LicenseRef-Debian-Xen-interface",
    "busybox-static": dep5.FREE_FORM,    # not machine-readable
    "libc6": dep5.FREE_FORM,             # DEP-5, but its AND of ~40 licenses is over the 500 characters
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_copyright_files(name: str) -> None:
    got = dep5.to_spdx((DATA / f"{name}.copyright").read_bytes())
    assert got == REAL[name]
    assert licenses.expression(got) is not None          # always a valid expression


SHORT = {
    "GPL-2+": "GPL-2.0-or-later", "GPL-2": "GPL-2.0-only", "LGPL-2.1+": "LGPL-2.1-or-later", "Expat": "MIT",
    "BSD-3-clause": "BSD-3-Clause", "Apache-2.0": "Apache-2.0", "GFDL-NIV-1.3+": "GFDL-1.3-no-invariants-or-later",
    "GPL-2 with Linux-syscall-note exception": "GPL-2.0-only WITH Linux-syscall-note",
    "GPL-3+ with OpenSSL exception": "LicenseRef-Debian-GPL-3-plus-with-OpenSSL-exception",
    "public-domain": "LicenseRef-Debian-public-domain", "MIT/X11": "LicenseRef-Debian-MIT-X11",
    "Perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
    "GPL-2+ or Artistic, and BSD-3-clause": "(GPL-2.0-or-later OR Artistic-1.0) AND BSD-3-Clause",
    "BSD-3-clause-Berkeley and LGPL-2.1+": "LicenseRef-Debian-BSD-3-clause-Berkeley AND LGPL-2.1-or-later",
}


@pytest.mark.parametrize("line", sorted(SHORT))
def test_short_names(line: str) -> None:
    assert dep5.license_line(line) == SHORT[line]


def test_missing_and_hostile_files() -> None:
    assert dep5.to_spdx(None) == "NOASSERTION"
    head = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    assert dep5.to_spdx(head) == dep5.FREE_FORM                                   # no Files paragraph
    many = head + b"".join(b"Files: f%d\nLicense: X%d\n\n" % (i, i) for i in range(10_000))
    assert dep5.to_spdx(many) == dep5.FREE_FORM                                   # bounded, too long
    assert dep5.to_spdx(head + b"Files: *\nLicense: GPL-2+ \xff\n") == "LicenseRef-Debian-GPL-2-plus"


def test_a_doc_directory_linked_to_another_package_gives_no_copyright(tmp_path: Path) -> None:
    """libgcc-s1's usr/share/doc/libgcc-s1 is a link to gcc-14-base: never followed, no licence read."""
    from composer.package.importer import copyright_file
    doc = tmp_path / "usr" / "share" / "doc"
    (doc / "gcc-14-base").mkdir(parents=True)
    (doc / "gcc-14-base" / "copyright").write_text("Format: x\n")
    (doc / "libgcc-s1").symlink_to("gcc-14-base")
    assert copyright_file(tmp_path, "libgcc-s1") is None
    assert copyright_file(tmp_path, "gcc-14-base") == b"Format: x\n"
    assert copyright_file(tmp_path, "absent") is None
