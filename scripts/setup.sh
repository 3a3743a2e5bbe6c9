#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: host tools (apt) and the .venv (pip).
set -euo pipefail
cd "$(dirname "$0")/.."

# Host tools and the Debian package that provides each.
TOOLS=(
  "mcopy:mtools" "mkfs.fat:dosfstools" "mke2fs:e2fsprogs" "mkfs.erofs:erofs-utils"
  "mksquashfs:squashfs-tools" "qemu-img:qemu-utils" "qemu-system-x86_64:qemu-system-x86"
  "qemu-system-aarch64:qemu-system-arm" "qemu-system-riscv64:qemu-system-misc" "objcopy:binutils" "apt-get:apt" "gpgv:gpgv" "busybox:busybox"
  "x86_64-linux-gnu-gcc:gcc" "aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu"
  "riscv64-linux-gnu-gcc:gcc-riscv64-linux-gnu" "sfdisk:fdisk" "debugfs:e2fsprogs" "ssh:openssh-client"
  "bwrap:bubblewrap" "syslinux:syslinux"
  "cmake:cmake" "ninja:ninja-build" "meson:meson" "pkg-config:pkgconf"   # docs/sdk.md: the examples
  "sbsign:sbsigntool" "sbverify:sbsigntool" "faketime:faketime" "veritysetup:cryptsetup-bin"  # docs/verified-boot.md
  "gdb-multiarch:gdb-multiarch" "debuginfod-find:debuginfod" "eu-readelf:elfutils"  # docs/debugging.md
  "dot:graphviz"                                             # vcomp graph, vcomp repo site (docs/site.md)
  "abidiff:abigail-tools"                                                            # docs/elf-checks.md
)
# Only for `make test-site` (VCOMP_SETUP_BROWSER=1): Debian's Chromium, headless, for the site's browser test.
if [ "${VCOMP_SETUP_BROWSER:-}" = 1 ]; then
  TOOLS+=("chromium:chromium")
fi
FILES=(
  "/usr/share/ovmf/OVMF.fd:ovmf" "/usr/share/OVMF/OVMF_CODE_4M.fd:ovmf"
  "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd:ovmf" "/usr/share/AAVMF/AAVMF_CODE.fd:qemu-efi-aarch64"
  "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin:qemu-system-data"  # riscv64 -bios default
  "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin:u-boot-qemu"                # riscv64's UEFI (disk, ESP)
  "/usr/share/keyrings/debian-archive-keyring.gpg:debian-archive-keyring"
  "/usr/lib/x86_64-linux-gnu/libc.a:libc6-dev" "/usr/aarch64-linux-gnu/lib/libc.a:libc6-dev-arm64-cross"
  "/usr/riscv64-linux-gnu/lib/libc.a:libc6-dev-riscv64-cross"
)
missing=()
for t in "${TOOLS[@]}"; do command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t##*:}"); done
for f in "${FILES[@]}"; do [ -e "${f%%:*}" ] || missing+=("${f##*:}"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.vcomp-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,dib,s3]'   # dib: the optional dib output's tests (docs/dib.md); s3: --to s3://
  echo "$want" > "$stamp"
fi
