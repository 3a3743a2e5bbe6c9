"""vpk on the device (issue 17 item 1; docs/updates/vpk-on-device.md): profiles/server.yaml built for x86_64 with
vpk in it and its disk booted in QEMU (UEFI), its two repositories served over HTTP on 127.0.0.1 at the port of
the profile's ``device-url`` (the guest reaches the host at 10.0.2.2 through QEMU's user networking).

Inside the guest one boot check (the script below) runs, as root:

1. a snapshot of ``/`` (path, type and mode, owner, size and sha256 of every file; outside /proc /sys /dev /run
   /tmp, /var/log, vpk's cache /var/cache/vpk and its history/lock; the database by its packages);
2. hostile: the sample repository re-pointed (``vpk repo-url``) at a path of the host's server that changes one
   byte of every package it sends: ``vpk install nano`` fails with one error line; the same at a path that
   serves a timestamp whose expiry was moved without its key (a bad signature), and at a port nobody answers
   on; then the URL recorded at build put back, and ``/`` is unchanged;
3. ``vpk install nano``, ``nano --version``, ``vpk rollback``, ``vpk verify`` (clean), a second snapshot:
   identical to the first.

Marker ``device`` (``make test-device``): the import of the Debian closure and the build take minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from composer.boot.session import run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout
from tests.conftest import REPO
from tests.httpserve import Quiet, serving
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = [pytest.mark.integration, pytest.mark.device]
BOOT_TIMEOUT = 1500   # seconds: the boot, then six vpk runs under TCG on a loaded machine
TAMPERED = "/tampered"  # the server's path prefix that flips one byte of every package it sends
FORGED = "/forged"      # ... and the one that extends the timestamp's expiry without its key (a bad signature)

SNAPSHOT = r'''
import hashlib, json, os, stat, sys
SKIP = {"proc", "sys", "dev", "run", "tmp", "var/log", "var/cache/vpk", "var/lib/vpk/history.json",
        "var/lib/vpk/lock"}
lines = []
for top, dirs, files in os.walk("/"):
    rel = top.strip("/")
    names = sorted(n for n in dirs + files if (rel + "/" + n).strip("/") not in SKIP)
    dirs[:] = [d for d in dirs if (rel + "/" + d).strip("/") not in SKIP]
    for name in names:
        path = (rel + "/" + name).strip("/")
        st = os.lstat("/" + path)
        line = f"{path} {stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
        if stat.S_ISLNK(st.st_mode):
            line += " -> " + os.readlink("/" + path)
        elif stat.S_ISREG(st.st_mode):
            with open("/" + path, "rb") as f:
                data = f.read()
            if path == "var/lib/vpk/db.json":   # its transaction counter moves on; the packages must not
                data = json.dumps(json.loads(data)["packages"], sort_keys=True).encode()
            line += f" {len(data)} {hashlib.sha256(data).hexdigest()}"
        lines.append(line)
with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")
'''

SCENARIO = r'''
say() { echo "VPK-TEST: $*" >/dev/console; }
snap() { python3 -B /tmp/snap.py "$1" && say "snapshot $1: $(wc -l <"$1") entries"; }
same() { cmp -s /tmp/before "$1" && say "unchanged: $1" && return 0
         say "CHANGED: $1"; diff /tmp/before "$1" | head -20 | sed 's/^/VPK-TEST:   /' >/dev/console; return 1; }
fails() {  # a command that must fail with one error line: print that line
    out=$("$@" 2>&1) && { say "UNEXPECTED SUCCESS: $*"; return 1; }
    say "refused: $(echo "$out" | grep '^error:' | head -1)"
    [ "$(echo "$out" | grep -c '^error:')" = 1 ] && ! echo "$out" | grep -q Traceback
}
cat >/tmp/snap.py <<'PY'
@SNAPSHOT@
PY
url=$(python3 -B -c 'import json; print([r["url"] for r in json.load(open("/var/lib/vpk/repositories.json"))
                                          if r["name"] == "sample"][0])')
say "sample repository: $url"
start=$(date +%s)
snap /tmp/before || exit 1
vpk repo-url sample "${url%/repo}@TAMPERED@/repo" >/dev/null || exit 1
fails vpk install nano || exit 1
vpk repo-url sample "${url%/repo}@FORGED@/repo" >/dev/null || exit 1
fails vpk install nano || exit 1
vpk repo-url sample "http://10.0.2.2:9/repo" >/dev/null || exit 1
fails vpk install nano || exit 1
vpk repo-url sample "$url" >/dev/null || exit 1
snap /tmp/hostile && same /tmp/hostile || exit 1
vpk install nano >/tmp/install.log 2>&1 || { sed 's/^/VPK-TEST:   /' /tmp/install.log >/dev/console; exit 1; }
say "installed: $(grep -c '^+' /tmp/install.log) packages added"
say "nano: $(nano --version | head -1)"
vpk list | grep -q '^nano ' || exit 1
vpk rollback >/tmp/rollback.log 2>&1 || { sed 's/^/VPK-TEST:   /' /tmp/rollback.log >/dev/console; exit 1; }
say "rolled back: $(tail -1 /tmp/rollback.log)"
[ ! -e /usr/bin/nano ] || exit 1
vpk verify >/tmp/verify.log 2>&1; status=$?
say "verify: exit $status, $(tail -1 /tmp/verify.log)"
[ "$status" = 0 ] || { sed 's/^/VPK-TEST:   /' /tmp/verify.log | head -20 >/dev/console; exit 1; }
snap /tmp/after && same /tmp/after || exit 1
say "history: $(vpk history | wc -l) transactions"
say "done in $(( $(date +%s) - start )) s"
'''
EXPECT = ["VPK-TEST: sample repository: http://10.0.2.2:", "VPK-TEST: refused: error:", "VPK-TEST: refused: error:",
          "VPK-TEST: refused: error:",
          "VPK-TEST: unchanged: /tmp/hostile", "VPK-TEST: nano: ", "VPK-TEST: rolled back:",
          "VPK-TEST: verify: exit 0", "VPK-TEST: unchanged: /tmp/after", "VCOMP-CHECK: PASS 50-vpk"]


def tamper(path: Path, data: bytes) -> bytes:
    """One byte of a package changed."""
    if path.suffix != ".vpk":
        return data
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def forge(path: Path, data: bytes) -> bytes:
    """The timestamp's expiry moved on by years, its signature left as it was."""
    return data.replace(b'"expires":"20', b'"expires":"29', 1) if path.name == "timestamp.json" else data


ALTERED = {TAMPERED: tamper, FORGED: forge}


class Handler(Quiet):
    """Serves the images directory; under a prefix of ALTERED the same files, altered."""

    def do_GET(self) -> None:
        prefix = next((p for p in ALTERED if self.path.startswith(p + "/")), None)
        if prefix is None:
            super().do_GET()
            return
        path = Path(self.translate_path(self.path[len(prefix):]))
        if not path.is_file():
            self.send_error(404)
            return
        data = ALTERED[prefix](path, path.read_bytes())
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(bytes(data))


def device_port() -> int:
    """The port of the server profile's device-url (the test must serve there: the image records it)."""
    doc = yaml.safe_load((REPO / "profiles" / "server.yaml").read_text())
    ports = {urlsplit(r["device-url"]).port for r in doc["repositories"]}
    assert len(ports) == 1 and None not in ports, ports
    return int(ports.pop())


@pytest.fixture
def served(sample_repo_base: Path) -> Iterator[Path]:
    """The sample repositories (the Debian closure added for x86_64) served on 127.0.0.1:PORT of the profile."""
    start = time.monotonic()
    build_debian_repo(sample_repo_base / "images" / "debian", sample_repo_base / "images" / "debian-packages",
                      checkout=SampleCheckout(root=REPO), arches=("x86_64",))
    print(f"import x86_64: {time.monotonic() - start:.0f} s")
    with serving(sample_repo_base / "images", port=device_port(), handler=Handler):
        yield sample_repo_base


def device_profile() -> str:
    """server.yaml for x86_64, its disk only, the check timeout raised, one boot test: the scenario."""
    doc = yaml.safe_load((REPO / "profiles" / "server.yaml").read_text())
    doc["architectures"] = ["x86_64"]
    doc["outputs"] = [o for o in doc["outputs"] if o["type"] == "disk"]   # a root that keeps /boot (see docs)
    doc["kernel"]["cmdline"] = f"{doc['kernel'].get('cmdline', '')} vcomp.checktimeout={BOOT_TIMEOUT}".strip()
    script = SCENARIO.replace("@SNAPSHOT@", SNAPSHOT.strip()).replace("@TAMPERED@", TAMPERED).replace(
        "@FORGED@", FORGED)
    doc["boot-tests"] = [{"name": "vpk", "checks": {"vpk": script.strip()}, "expect": EXPECT,
                          "timeout": BOOT_TIMEOUT}]
    text: str = yaml.safe_dump(doc, sort_keys=False, width=1000)
    return text


def test_vpk_install_then_rollback_leaves_the_root_as_it_was(served: Path, tmp_path: Path) -> None:
    profiles = copy_profiles(served, tmp_path)
    prof = profiles / "server-device.yaml"
    prof.write_text(device_profile())
    start = time.monotonic()
    with with_cache(tmp_path / "cache"):
        assert main(["lock", str(prof)]) == 0
        assert main(["build", str(prof), "--images", str(tmp_path / "images-out")]) == 0
    print(f"lock+build: {time.monotonic() - start:.0f} s")
    built = tmp_path / "images-out" / "server" / "x86_64"
    start = time.monotonic()
    (case,) = run_boot(read_manifest(built), built, "disk", "uefi", logs=tmp_path / "logs", timeout=BOOT_TIMEOUT)
    print(f"boot and scenario: {time.monotonic() - start:.0f} s")
    log = case.watch.log
    print("\n".join(line for line in log.splitlines() if "VPK-TEST" in line))
    assert case.passed, f"{case.reason()}; console tail:\n{case.watch.tail(80)}"
    tampered, forged, unreachable = [line for line in log.splitlines() if "VPK-TEST: refused: " in line]
    assert "hash mismatch" in tampered and "nano" in tampered, tampered
    assert "timestamp" in forged.lower(), forged
    assert "cannot connect" in unreachable and "10.0.2.2:9" in unreachable, unreachable
