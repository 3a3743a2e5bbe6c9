#!/usr/bin/env bash
# Run the public TUF conformance suite (theupdateframework/tuf-conformance) against vcomp's TUF client
# (composer/repo/conformance.py). The suite's code is never part of the project: it is cloned at a pinned
# commit into .conformance/src (ignored by git) and installed with its own pinned dependencies into
# .conformance/venv. Not part of `make test`. See docs/security/conformance.md.
#
#   TUF_CONFORMANCE_REPO  where to clone the suite from (a URL, or a local clone or bare mirror)
#   extra arguments       go to pytest, e.g. scripts/conformance.sh -k test_unsigned_metadata -rA
set -euo pipefail
cd "$(dirname "$0")/.."

COMMIT=eec841c186f81f2d9d8d30460c7e7deefa615f9e   # main after #407 (v2.4.0 + 20 commits; has #405)
REPO="${TUF_CONFORMANCE_REPO:-https://github.com/theupdateframework/tuf-conformance}"
DIR=.conformance
SRC="$DIR/src"
VENV="$DIR/venv"
CLIENT="$PWD/.venv/bin/python -m composer.repo.conformance"

# The suite runs the client under faketime for its expiry tests.
if ! command -v faketime >/dev/null 2>&1; then
  echo "conformance: installing Debian package faketime"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends faketime >/dev/null
fi

# The suite's source at the pinned commit.
mkdir -p "$DIR"
if [ ! -d "$SRC/.git" ]; then
  rm -rf "$SRC"
  git clone -q --no-checkout "$REPO" "$SRC"
fi
git -C "$SRC" cat-file -e "$COMMIT^{commit}" 2>/dev/null || git -C "$SRC" fetch -q "$REPO" "$COMMIT"
git -C "$SRC" -c advice.detachedHead=false checkout -q --force "$COMMIT"   # also undoes any local edit
git -C "$SRC" clean -q -f -d
test "$(git -C "$SRC" rev-parse HEAD)" = "$COMMIT"

# Its own venv with its own pinned dependencies (its pyproject.toml), rebuilt when the commit changes.
stamp="$VENV/.tuf-conformance-commit"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$COMMIT" ]; then
  echo "conformance: installing the suite $COMMIT into $VENV"
  rm -rf "$VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "./$SRC"
  echo "$COMMIT" > "$stamp"
fi

# vcomp's own environment (the client under test runs in it).
bash scripts/setup.sh

# Expected failures: the suite reads them from "<entrypoint>.xfails" (here that would be the file
# "$CLIENT.xfails", which does not exist): vcomp's client has none, every test must pass. A skip, an
# xfail or an xpass is printed below and would be a change to explain in docs/security/conformance.md.
# The suite makes the client's metadata and target directories with the process umask; the client
# refuses group- or world-writable ones (vcomp's cache rules), so the umask is the usual 022.
umask 022
report="$DIR/report.json"
rm -f "$report"
set +e
(cd "$SRC" && "../venv/bin/python" -m pytest -p no:cacheprovider -q -rfEsxX tuf_conformance \
    --entrypoint "$CLIENT" --json-report --json-report-file="../report.json" --json-report-omit=log "$@")
rc=$?
set -e
echo "conformance: suite $COMMIT, client: $CLIENT"
# Every count, zeros included, so a skip or an expected failure can never pass unnoticed.
"$VENV/bin/python" - "$report" <<'PY'
import json, sys
try:
    summary = json.load(open(sys.argv[1]))["summary"]
except (OSError, ValueError, KeyError) as exc:
    sys.exit(f"conformance: no report ({exc})")
kinds = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
print("conformance: " + ", ".join(f"{summary.get(k, 0)} {k}" for k in kinds)
      + f" (of {summary.get('collected', 0)} collected)")
PY
exit "$rc"
