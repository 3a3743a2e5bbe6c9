#!/usr/bin/env python3
"""Move the pins of recipes/vpk to the folders as committed at HEAD (docs/updates/vpk-on-device.md).

The vpk package is built from this project's own source, pinned by git tree id (``tree = ...`` in each
``python-project`` source), so the package and every lock holding it stay the same while the checkout moves on.
Releasing the package manager to devices is moving the pin:

    git commit ...                       # the code vpk should carry
    scripts/pin-vpk.py                   # the pins := git rev-parse HEAD:composer, HEAD:schemas
    PYTHONPATH=$PWD .venv/bin/python scripts/sample_repo.py images/repo images/packages
    .venv/bin/vcomp lock --update vpk profiles/server.yaml profiles/device.yaml
    git commit -am "vpk: pinned to ..."

Uncommitted changes of a pinned folder are not in the pin: the script says so and pins HEAD's tree anyway.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "vpk" / "recipe.toml"
SOURCE = re.compile(r'(\[\[source\]\]\nkind = "python-project"\npath = "([^"]+)"[^\n]*\n)((?:[a-z]+ = .*\n)*)')


def git(*argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def main() -> int:
    text = RECIPE.read_text()

    def pin(m: re.Match[str]) -> str:
        path = m.group(2)
        tree = git("rev-parse", f"HEAD:{path}")
        if git("status", "--porcelain", "--", path):
            print(f"{path}/: uncommitted changes are not in the pin (pinned HEAD:{path})", file=sys.stderr)
        rest = "".join(line + "\n" for line in m.group(3).splitlines() if not line.startswith("tree = "))
        print(f"{path}: tree {tree}")
        return f'{m.group(1)}tree = "{tree}"\n{rest}'

    new, count = SOURCE.subn(pin, text)
    if not count:
        print(f"{RECIPE}: no python-project source found", file=sys.stderr)
        return 1
    RECIPE.write_text(new)
    print(f"{RECIPE.relative_to(REPO)}: {count} pins moved; rebuild the sample repository and relock "
          "(see this script's docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
