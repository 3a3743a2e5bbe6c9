"""Regenerate the trimmed Debian fixture tests/data/debian-bookworm-amd64/ (design14 §5.3).

Writes Packages.zst (the closure of the apt agreement requests + the Essential set, design14 §4.2's fields),
expected.json (apt's answer for each request, run on the trimmed file itself through a file: source) and
PROVENANCE.md. A thin entry point for `make debian-fixture`: the work is composer.package.debfixture.

usage: python scripts/debian_fixture.py [--packages PACKAGES [--inrelease INRELEASE]] [--out DIR]
  without --packages: bookworm main amd64 through DebianArchive's private apt state (network)
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
from pathlib import Path

from composer import settings
from composer.arch import get_arch
from composer.package import debfixture as fx
from composer.package.debian import DebianArchive
from composer.run import run

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "debian-bookworm-amd64"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=Path, help="an uncompressed Packages file (default: fetch)")
    parser.add_argument("--inrelease", type=Path, help="the InRelease that lists it (for the provenance)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    arch = get_arch("x86_64")
    if args.packages:
        packages = args.packages.read_bytes()
        inrelease = args.inrelease.read_bytes() if args.inrelease else None
    else:
        packages, inrelease = fx.archive_packages(DebianArchive(settings.cache_dir(), suite=fx.FIXTURE_SUITE), arch)
    fixture = fx.build_fixture(packages.decode())
    print(f"{fixture.source_packages} stanzas -> {fixture.packages} kept ({len(fixture.text.encode())} bytes)")
    source = fx.provenance(packages, inrelease, arch)
    with tempfile.TemporaryDirectory(prefix="vcomp-aptsim-") as tmp:
        expected = fx.record_expected(fixture, Path(tmp) / "apt", arch, source=source)
    compressed = fx.compress(fixture.text)
    apt_version = run(["apt-get", "--version"]).stdout.decode().splitlines()[0]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "Packages.zst").write_bytes(compressed)
    (args.out / "expected.json").write_text(fx.expected_json(expected))
    (args.out / "PROVENANCE.md").write_text(fx.provenance_markdown(
        source, fixture, expected, recorded=now, apt_version=apt_version,
        compressed_bytes=len(compressed)))
    requests = expected["requests"]
    assert isinstance(requests, dict)
    for label, r in requests.items():
        print(f"  {label:22} exit {r['exit']:3}  {r['count']:4} Inst")
    print(f"wrote {args.out} ({len(compressed)} bytes zstd)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
