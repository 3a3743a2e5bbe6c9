#!/usr/bin/env bash
# `make demo`: the main job end to end:
#   1. the sample package set built from recipes (Debian 13 trixie binaries + sources) for x86_64, aarch64 and
#      riscv64, signed with the committed sample developer key, verified and linted; the Debian closure of
#      openssh-server, python3 and nginx imported for the three (images/debian, with its translation report);
#   2. published into the sample TUF repository images/repo (committed sample keys and trust root);
#   3. served over HTTP on 127.0.0.1 and queried with search/info/fetch (everything verified);
#   4. the committed locks checked against the repository (relocked, saying what moved, if it moved);
#   5. profiles/minimal.yaml built into images/minimal/{x86_64,aarch64,riscv64}/ (ISO or initramfs, GPT disk;
#      manifest, SBOM, provenance), rootless and bit-for-bit, from the lock;
#   6. one output of each architecture booted in QEMU (software emulation) against the profile's boot tests;
#   7. profiles/server.yaml (sshd, nginx, python3 from Debian) built for x86_64 and booted: its boot tests
#      log in over ssh and fetch a page over HTTP from the host (ports of 127.0.0.1 only).
set -euo pipefail
cd "$(dirname "$0")/.."
VCOMP=".venv/bin/vcomp"
OUT="images"
ROOT="profiles/trust/sample-root.json"
DEVPUB="keys/sample/INSECURE-SAMPLE-developer.pub"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1700000000}"

echo "== 1-2. building the sample package set and publishing the sample repository ($OUT/repo)"
.venv/bin/python scripts/sample_repo.py "$OUT/repo" "$OUT/packages"
for arch in x86_64 aarch64 riscv64; do
  n=$($VCOMP pkg verify --key "$DEVPUB" "$OUT/packages/$arch"/*.vpk | grep -c '^OK')
  echo "   $arch: $n packages verified against the developer key; lint: $($VCOMP pkg lint "$OUT/packages/$arch"/*.vpk | grep -vc ': clean$' || true) findings"
done

for arch in x86_64 aarch64 riscv64; do   # the Debian closure profiles/server.yaml uses (docs/packages/closures.md)
  n=$($VCOMP pkg verify --key "$DEVPUB" "$OUT/debian-packages/$arch"/*.vpk | grep -c '^OK')
  echo "   $arch: $n imported Debian packages verified; lint: $($VCOMP pkg lint "$OUT/debian-packages/$arch"/*.vpk | grep -c 'untranslated' || true) untranslated maintainer-script items (report: $OUT/debian-packages/translation-report.md)"
done

echo "== 3. serving the repository on 127.0.0.1 and querying it (trust root $ROOT)"
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$VCOMP repo serve "$OUT/repo" --port "$PORT" > /dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
URL="http://127.0.0.1:$PORT"
echo "   \$ vcomp search editor --repo $URL --root $ROOT"
$VCOMP search editor --repo "$URL" --root "$ROOT" | sed 's/^/   /'
echo "   \$ vcomp info nano --arch aarch64 --repo $URL --root $ROOT"
$VCOMP info nano --arch aarch64 --repo "$URL" --root "$ROOT" | sed 's/^/   /'
echo "   \$ vcomp fetch busybox --arch aarch64 --repo $URL --root $ROOT --out $OUT/fetched"
$VCOMP fetch busybox --arch aarch64 --repo "$URL" --root "$ROOT" --out "$OUT/fetched" | sed 's/^/   /'

echo "== 4. profiles: validate, and check the committed locks against the sample repository"
$VCOMP validate profiles/minimal.yaml profiles/server.yaml | sed 's/^/   /'
for p in minimal server; do
  if check=$($VCOMP lock --check "profiles/$p.yaml" 2>&1); then
    echo "   $check"
  else
    # The sample repository is built from the Debian archive, which moves on (security updates):
    # say what no longer matches, relock (locked versions are kept where the repository still has them)
    # and show what moved, instead of failing.
    echo "   profiles/$p.lock no longer matches:"
    echo "$check" | sed 's/^/     /'
    $VCOMP lock "profiles/$p.yaml" | sed 's/^/   /'
    echo "   relocked profiles/$p.lock: review the changes above and commit it"
  fi
done
# The Debian import's signed advisory feed (CVEs from each package's changelog.Debian; docs/advisories.md),
# matched against the server's lock: the imported versions are the fixed ones, so this audits clean.
echo "   \$ vcomp advisory list $OUT/debian | tail -1; vcomp audit profiles/server.yaml | tail -1"
$VCOMP advisory list "$OUT/debian" | tail -1 | sed 's/^/   /'
$VCOMP audit profiles/server.yaml | tail -1 | sed 's/^/   /'
# The sample repository serves two Debian builds of the kernel and its drivers (6.12.117-1 from trixie main and
# 6.12.118-1 from trixie-security, composer/repo/sample.py): they order as dpkg orders them, so a lock that held the older build moves up.
.venv/bin/python - <<'PY' | sed 's/^/   /'
from pathlib import Path
from composer.profile.load import load_profile
from composer.solve.lock import diff_locks, lock_path, open_sources, read_lock, resolve_profile
from composer.solve.relock import repos_cache

path = Path("profiles/minimal.yaml")
profile, lock = load_profile(path), read_lock(lock_path(path))
assert lock is not None
sources = open_sources(profile, repos_cache())
keep: dict[str, dict[str, str]] = {}
for arch in profile.architectures:
    kernel = lock.package(arch, "linux")
    index = sources.index(arch)
    older = [e for e in (index.entry(s.id) for s in index.named("linux"))
             if e.name == "linux" and kernel is not None and e.full_version < kernel.full_version]
    if kernel is not None and older:
        previous = max(older, key=lambda e: e.order_key()).version_text
        keep[arch] = {p.name: previous for p in lock.packages(arch) if p.version == kernel.version}
if keep:
    moved = sorted({n for k in keep.values() for n in k})
    print(f"$ vcomp lock --update {' '.join(moved)} profiles/minimal.yaml   # from a lock that held "
          f"{sorted({v for k in keep.values() for v in k.values()})[0]}")
    for line in diff_locks(resolve_profile(profile, sources, keep), lock):
        print(line)
else:
    print("(the repository serves one kernel build only: no older revision to move from)")
PY
echo "   \$ vcomp why libtinfo6 --profile profiles/server.yaml --arch aarch64"
$VCOMP why libtinfo6 --profile profiles/server.yaml --arch aarch64 | sed 's/^/   /'

echo "== what is in the repository"
.venv/bin/python - "$OUT/packages" <<'PY'
import sys
from pathlib import Path
from rich.console import Console
from rich.table import Table
from composer.package.archive import read_header

table = Table("package", "version", "arch", "type", "files", "installed", ".vpk", "needs / provides")
for path in sorted(Path(sys.argv[1]).glob("*/*.vpk")):  # the previous kernel build (previous-kernel/) is not listed
    h = read_header(path)
    m = h.metadata
    extra = ", ".join([*(f"cap:{c}" for c in m.capabilities_required), *m.provides])
    table.add_row(m.name, str(m.full_version), m.arch, m.type, str(len(h.manifest.entries)),
                  f"{h.manifest.installed_size / 1e6:.1f} MB", f"{path.stat().st_size / 1e6:.2f} MB", extra)
Console(width=150).print(table)
PY

echo "== 5. building profiles/minimal.yaml from its lock (rootless, reproducible; unchanged outputs come from the cache)"
$VCOMP build profiles/minimal.yaml --images "$OUT" | sed 's/^/   /'
echo "== 6. booting one output of each architecture in QEMU (software emulation) against the profile's boot tests"
echo "   x86_64: images/minimal/x86_64/iso.iso (BIOS, isolinux)"
$VCOMP boot "$OUT/minimal/x86_64/iso.iso" --firmware bios
echo "   aarch64: images/minimal/aarch64/disk.qcow2 (UEFI: AAVMF, then the systemd-stub UKI on the ESP)"
$VCOMP boot "$OUT/minimal/aarch64/disk.qcow2" --firmware uefi
echo "   riscv64: images/minimal/riscv64/initramfs (OpenSBI, then the kernel and the initramfs directly)"
$VCOMP boot "$OUT/minimal/riscv64" --output initramfs
echo "   more: vcomp test profiles/minimal.yaml boots every output of every architecture (BIOS and UEFI) with JUnit"
echo "== 7. profiles/server.yaml (sshd, nginx and python3 imported from Debian 13) built for x86_64 and booted; the"
echo "   host logs in over ssh with the profile user's key and fetches a page over HTTP (ports of 127.0.0.1 only)"
$VCOMP test profiles/server.yaml --arch x86_64 --cell 'x86_64/initramfs/*' --images "$OUT" | sed 's/^/   /'
echo "   more: vcomp test profiles/server.yaml (every architecture, disk and initramfs); docs/reach.md"
