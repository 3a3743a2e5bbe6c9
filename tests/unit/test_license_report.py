"""The licence report (composer/report/licensereport.py, pure) and which packages get a licence text shipped
(composer/compose/licensetexts.py ``wanted``, pure)."""

from __future__ import annotations

from composer.compose.licensetexts import wanted
from composer.report.licensereport import lines, package_licence, report, to_html
from tests.unit.test_json_output import check

ROWS = [
    package_licence("nano", "8.4-1", "GPL-3.0-or-later", ["usr/bin/nano", "usr/share/doc/nano/copyright"]),
    package_licence("busybox", "1.37.0", "GPL-2.0-only", ["bin/busybox"]),
    package_licence("linux", "6.12.118-1", "GPL-2.0-only", ["boot/vmlinuz", "usr/share/licenses/linux/copyright"]),
    package_licence("tzdata", "2025b", "LicenseRef-Debian-public-domain", ["usr/share/zoneinfo/UTC"]),
    package_licence("odd", "1.0", "Whatever 2", ["usr/bin/odd", "opt/odd/COPYING.txt"]),
    package_licence("meta", "1.0", "NOASSERTION", []),
]


def test_groups_missing_and_invalid() -> None:
    r = report("minimal.yaml", "x86_64", ROWS)
    assert r.groups == {"GPL-2.0-only": ["busybox", "linux"], "GPL-3.0-or-later": ["nano"],
                        "LicenseRef-Debian-public-domain": ["tzdata"], "NOASSERTION": ["meta"],
                        "Whatever 2": ["odd"]}
    assert r.missing == ["busybox"]          # tzdata needs no text, odd ships COPYING.txt, meta states nothing
    assert r.invalid == ["odd"]
    text = "\n".join(lines(r))
    assert "  busybox 1.37.0: no licence file" in text and "ship no licence text although" in text
    check({"format_version": "1.0", "reports": [r.to_dict()]}, "license-report")


def test_html_is_one_escaped_page() -> None:
    page = to_html([report("a <b> & c", "x86_64", ROWS)])
    assert page.startswith("<!DOCTYPE html>") and "a &lt;b&gt; &amp; c" in page and "<script" not in page
    assert page.count('class="missing"') == 1


def record(license_: str, files: list[str], sources: list[dict[str, str]]) -> dict[str, object]:
    return {"version": "1", "files": [{"path": f, "type": "file"} for f in files],
            "metadata": {"package": {"license": license_}, "provenance": {"sources": sources}}}


def test_texts_are_wanted_for_deb_made_packages_without_one() -> None:
    deb = {"kind": "deb", "name": "busybox-static", "version": "1:1.37.0-6+b9", "arch": "amd64", "sha256": "0" * 64}
    records = {"busybox": record("GPL-2.0-only", ["bin/busybox"], [deb]),
               "nano": record("GPL-3.0-or-later", ["usr/share/doc/nano/copyright"], [deb]),
               "init": record("Apache-2.0", ["init"], []),                # its recipe must ship it
               "tz": record("CC0-1.0", ["usr/share/zoneinfo/UTC"], [deb])}
    assert [(w.package, w.deb["name"]) for w in wanted(records)] == [("busybox", "busybox-static")]
