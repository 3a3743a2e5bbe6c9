"""pkg lint: each finding is triggered by a real package built to have that mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import UserError
from composer.package.build import build
from composer.package.lint import lint_package
from composer.trust.keys import SigningKey
from tests.conftest import write_recipe

HEAD = """
    [package]
    name = "lintme"
    version = "1.0.0"
    description = "{description}"
    license = "{license}"
    type = "{type}"
    {extra}
    [files]
    asset = ["etc/asset.conf"]
    modes = {{ "usr/bin/su-ish" = "4755", "var/lib/open" = "0777", "tmp" = "1777" }}

    [[source]]
    kind = "tree"
    path = "files"
"""
FILES: dict[str, str | bytes] = {
    "files/usr/bin/su-ish": "#!/bin/sh\n", "files/etc/asset.conf": "x\n", "files/var/lib/open": "x\n",
    "files/weird/place": "x\n", "files/proc/cpuinfo": "fake\n", "files/tmp/.keep": "",
}


def _codes(tmp_path: Path, key: SigningKey, **fields: str) -> set[str]:
    values = {"description": "Something useful", "license": "MIT", "type": "application", "extra": ""} | fields
    rdir = write_recipe(tmp_path / "r", HEAD.format(**values), FILES)
    pkg = build(rdir, "x86_64", key, tmp_path / "out").path
    return {f.code for f in lint_package(pkg)}


def test_findings(tmp_path: Path, dev_key: SigningKey) -> None:
    codes = _codes(tmp_path, dev_key)
    assert {"setuid-file", "world-writable", "etc-not-config", "unexpected-path", "pseudo-fs-content",
            "missing-authors"} <= codes
    assert "missing-description" not in codes and "missing-license" not in codes


def test_missing_description_and_license(tmp_path: Path, dev_key: SigningKey) -> None:
    codes = _codes(tmp_path, dev_key, description="lintme", license="NOASSERTION")
    assert {"missing-description", "missing-license"} <= codes


def test_invalid_license_expression(tmp_path: Path, dev_key: SigningKey) -> None:
    """The licence is checked with license-expression: an id off the SPDX list is an error (repo add refuses it)."""
    codes = _codes(tmp_path, dev_key, license="MIT OR Apache-3.0")
    assert "invalid-license" in codes and "missing-license" not in codes
    assert "invalid-license" not in _codes(tmp_path / "ok", dev_key, license="MIT OR LicenseRef-Mine")


def test_driver_without_driver_provides(tmp_path: Path, dev_key: SigningKey) -> None:
    assert "driver-provides" in _codes(tmp_path, dev_key, type="driver")


def test_cli_exit_code(tmp_path: Path, keydir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = {"description": "Something useful", "license": "MIT", "type": "application", "extra": ""}
    rdir = write_recipe(tmp_path / "r", HEAD.format(**values), FILES)
    assert main(["pkg", "build", str(rdir), "--key", str(keydir / "dev.key"), "--out", str(tmp_path / "o")]) == 0
    pkg = capsys.readouterr().out.strip()
    assert main(["pkg", "lint", pkg]) == 1
    out = capsys.readouterr().out
    assert "error: world-writable: var/lib/open" in out and "warning: setuid-file: usr/bin/su-ish" in out


ACTIONS = """
    [actions]
    untranslated = ["postinst: db_get ssh/permit (debconf)"]
    [[actions.tmpfiles]]
    type = "f"
    path = "/etc/asset.conf"
    [[actions.alternatives]]
    name = "editor"
    link = "/usr/bin/editor"
    path = "/usr/bin/not-here"
"""


def test_actions_findings(tmp_path: Path, dev_key: SigningKey) -> None:
    values = {"description": "Something useful", "license": "MIT", "type": "application", "extra": ACTIONS}
    rdir = write_recipe(tmp_path / "r", HEAD.format(**values), FILES)
    findings = {f.code: f for f in lint_package(build(rdir, "x86_64", dev_key, tmp_path / "out").path)}
    assert findings["untranslated"].level == "warning" and "db_get ssh/permit" in findings["untranslated"].message
    assert findings["tmpfiles-shipped"].level == "error"
    assert "/usr/bin/not-here" in findings["action-path-missing"].message


def test_invalid_actions_stop_the_build_naming_package_and_field(tmp_path: Path, dev_key: SigningKey) -> None:
    bad = '\n    [[actions.tmpfiles]]\n    type = "d"\n    path = "/srv/../../escape"\n'
    values = {"description": "Something useful", "license": "MIT", "type": "application", "extra": bad}
    rdir = write_recipe(tmp_path / "r", HEAD.format(**values), FILES)
    with pytest.raises(UserError, match=r"\$.actions.tmpfiles\[0\].path: package 'lintme': .* has a '..' component"):
        build(rdir, "x86_64", dev_key, tmp_path / "out")
@pytest.mark.parametrize(("path", "found"), [
    ("usr/lib/modules/6.12.118+deb13-amd64/kernel/drivers/block/virtio_blk.ko.xz", False),   # Debian 13 layout
    ("lib/modules/6.12.118+deb13-amd64/kernel/drivers/block/virtio_blk.ko.xz", False),       # Debian 12 layout
    ("usr/lib/modules/6.12.118+deb13-amd64/kernel/drivers/block/virtio_blk.ko", True),
])
def test_driver_modules_in_either_module_directory(path: str, found: bool) -> None:
    from types import SimpleNamespace

    from composer.package.lint import check_driver
    meta = SimpleNamespace(type="driver", provides=("driver:virtio-blk",),
                           driver={"kernel": "6.12.118+deb13-amd64",
                                   "modules": ["kernel/drivers/block/virtio_blk.ko.xz"]})
    header = SimpleNamespace(metadata=meta, manifest=SimpleNamespace(entries=[SimpleNamespace(path=path)]))
    codes = [f.code for f in check_driver(header)]  # type: ignore[arg-type]
    assert codes == (["driver-module-missing"] if found else [])
