"""The CLI verbs on real packages, and verify's messages on forged (validly re-signed) packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import VerificationError
from composer.package.archive import read_header, verify_package
from composer.package.build import Built
from composer.package.manifest import Entry
from tests import hostile


def test_info_contents_verify_extract(hello_pkg: Built, keydir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pkg = str(hello_pkg.path)
    assert main(["pkg", "info", pkg]) == 0
    out = capsys.readouterr().out
    assert "name            hello" in out and "depends         base-files 12, libgreet ~0.3" in out
    assert main(["pkg", "info", pkg, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["package"]["version"] == "1.2.3" and info["files"] == len(hello_pkg.manifest.entries)
    assert main(["pkg", "contents", pkg]) == 0
    assert "file     0755  21  binary  usr/bin/hello" in capsys.readouterr().out  # aligned: widths from the data
    assert main(["pkg", "verify", pkg, "--key", str(keydir / "dev.pub")]) == 0
    assert "OK   " in capsys.readouterr().out
    assert main(["pkg", "verify", pkg, "--key", str(keydir / "other.pub")]) == 1
    assert "FAIL " in capsys.readouterr().err
    root = tmp_path / "root"
    assert main(["pkg", "extract", pkg, "--root", str(root), "--key", str(keydir / "dev.pub")]) == 0
    assert (root / "usr/bin/hello").read_text() == "#!/bin/sh\necho hello\n"
    assert (root / "usr/bin/hi").readlink() == Path("hello")
    assert main(["pkg", "extract", pkg, "--root", str(root)]) == 1  # files exist: refused without --overwrite
    assert "error:" in capsys.readouterr().err


def _forge(tmp_path: Path, entries: list[Entry], members: list[hostile.Member], **kw: object) -> Path:
    payload = hostile.compress(hostile.tar_stream(members))
    return hostile.write_vpk(tmp_path / "forged.vpk", entries=entries, payload=payload, **kw)  # type: ignore[arg-type]


GOOD = hostile.file("etc/x.conf", b"hello\n")


@pytest.mark.parametrize(("change", "expect"), [
    ({"sha256": "0" * 64}, "'etc/x.conf' sha256 differs from the manifest"),
    ({"mode": 0o600}, "'etc/x.conf' has mode 0644, the manifest says 0600"),
    ({"size": 3}, "'etc/x.conf' is 6 bytes, the manifest says 3"),
    ({"path": "etc/y.conf"}, "member 'etc/x.conf' where the manifest expects 'etc/y.conf'"),
    ({"type": "dir"}, "'etc/x.conf' is a file in the payload, a dir in the manifest"),
])
def test_manifest_disagrees_with_payload(tmp_path: Path, change: dict[str, object], expect: str) -> None:
    import dataclasses
    entry = dataclasses.replace(GOOD.entry(), **change)  # type: ignore[arg-type]
    pkg = _forge(tmp_path, [entry], [GOOD])
    with pytest.raises(VerificationError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        verify_package(pkg)


def test_extra_and_missing_members(tmp_path: Path) -> None:
    other = hostile.file("etc/z.conf", b"z")
    with pytest.raises(VerificationError, match="'etc/z.conf' is not in the manifest"):
        verify_package(_forge(tmp_path, [GOOD.entry()], [GOOD, other]))
    with pytest.raises(VerificationError, match="'etc/z.conf' is in the manifest but not in the payload"):
        verify_package(_forge(tmp_path, [GOOD.entry(), other.entry()], [GOOD]))


def test_payload_digest_mismatch(tmp_path: Path) -> None:
    pkg = _forge(tmp_path, [GOOD.entry()], [GOOD], payload_sha256="f" * 64)
    with pytest.raises(VerificationError, match="payload.tar.zst: sha256 differs from the manifest"):
        verify_package(pkg)


def test_forged_package_fails_with_the_trusted_key(tmp_path: Path, keydir: Path) -> None:
    from composer.trust.keys import load_public_key
    pkg = _forge(tmp_path, [GOOD.entry()], [GOOD])
    verify_package(pkg)  # integrity holds: it is signed by the forger's own key ...
    with pytest.raises(VerificationError, match="not by the trusted key"):  # ... which nobody trusts
        verify_package(pkg, load_public_key(keydir / "dev.pub"))
    assert read_header(pkg).metadata.name == "hostile"


def test_a_reader_that_leaves_early_is_not_an_internal_error() -> None:
    """`vcomp info x | head -1`: the closed pipe ends the command quietly (exit 141), never 'internal error'."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from composer.cli import lock, main as cli\n"
            "def flood(args):\n"
            "    for i in range(200000):\n"
            "        print('line', i)\n"
            "    return 0\n"
            "lock.cmd_validate = flood\n"
            "sys.exit(cli.main(['validate', 'x.yaml']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "internal error" not in err and "Traceback" not in err
