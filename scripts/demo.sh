#!/usr/bin/env bash
# `make demo`: the main job end to end, as far as the pipeline goes today:
# a developer key, the whole sample package set built from Debian bookworm binaries for
# x86_64 and aarch64, every package verified and linted, and a summary of what was built.
set -euo pipefail
cd "$(dirname "$0")/.."
VCOMP=".venv/bin/vcomp"
OUT="out"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1700000000}"

if [ ! -f "$OUT/keys/dev.key" ]; then
  echo "== generating the demo developer key"
  $VCOMP key generate dev --dir "$OUT/keys" >/dev/null
fi
echo "== developer key id: $($VCOMP key id "$OUT/keys/dev.pub")"

for arch in x86_64 aarch64; do
  echo "== building the sample package set for $arch (recipes/ -> $OUT/packages/$arch)"
  start=$(date +%s%N)
  $VCOMP pkg build-all recipes --arch "$arch" --key "$OUT/keys/dev.key" --out "$OUT/packages/$arch" >/dev/null
  end=$(date +%s%N)
  echo "   $arch: $(( (end - start) / 1000000 )) ms"
  echo "== verifying every $arch package against the developer's public key"
  $VCOMP pkg verify --key "$OUT/keys/dev.pub" "$OUT/packages/$arch"/*.vpk | sed 's/^/   /' | cut -c1-110
  echo "== linting"
  $VCOMP pkg lint "$OUT/packages/$arch"/*.vpk | grep -v ': clean$' | sed 's/^/   /' || echo "   all clean"
done

echo "== what was built"
.venv/bin/python - "$OUT/packages" <<'PY'
import sys
from pathlib import Path
from rich.console import Console
from rich.table import Table
from composer.package.archive import read_header

table = Table("package", "version", "arch", "type", "files", "installed", ".vpk", "needs / provides")
for path in sorted(Path(sys.argv[1]).glob("*/*.vpk")):
    h = read_header(path)
    m = h.metadata
    extra = ", ".join([*(f"cap:{c}" for c in m.capabilities_required), *m.provides])
    table.add_row(m.name, m.version.split("+")[0], m.arch, m.type, str(len(h.manifest.entries)),
                  f"{h.manifest.installed_size / 1e6:.1f} MB", f"{path.stat().st_size / 1e6:.2f} MB", extra)
Console(width=150).print(table)
PY
for arch in x86_64 aarch64; do
  echo "== booting the sample set in QEMU ($arch, software emulation): kernel + initramfs from the packages"
  rm -rf "$OUT/boot/$arch"; mkdir -p "$OUT/boot/$arch"
  .venv/bin/python scripts/boot_preview.py "$OUT/packages/$arch" "$arch" "$OUT/keys/dev.pub" "$OUT/boot/$arch"
done
echo "== next: signed repositories, profiles and locks, and the full image pipeline arrive with the next issues"
