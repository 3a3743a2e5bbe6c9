"""dm-verity: the hash tree of a read-only root file system image, and the kernel command line that names it.

``veritysetup format`` (cryptsetup-bin) writes the hash tree of a plain image file into another file; it needs no
device-mapper on the host. The salt and the UUID are derived from the build's seed, so the tree and its root hash
are the same bytes for the same root. The guest's init (recipes/init) reads :func:`cmdline_word` and sets the
table up with ``dmsetup`` before switching root (docs/verified-boot.md).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ToolError
from composer.run import run

BLOCK = 4096                     # data and hash block size
ALGORITHM = "sha256"
ROOT_HASH = re.compile(rb"^Root hash:\s+([0-9a-f]{64})\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerityTree:
    """What the guest needs to check the data image against its hash tree."""

    root_hash: str
    salt: str
    data_blocks: int

    def cmdline_word(self, data_dev: str, hash_dev: str) -> str:
        """``vcomp.verity=DATA,HASH,BLOCKS,ROOTHASH,SALT``: init builds the dm-verity table from it."""
        return f"vcomp.verity={data_dev},{hash_dev},{self.data_blocks},{self.root_hash},{self.salt}"

    def table(self, data_dev: str, hash_dev: str) -> str:
        """The dm table (as init builds it: the same format, for tests and docs)."""
        return (f"0 {self.data_blocks * BLOCK // 512} verity 1 {data_dev} {hash_dev} {BLOCK} {BLOCK} "
                f"{self.data_blocks} 1 {ALGORITHM} {self.root_hash} {self.salt}")


def salt_for(seed: str) -> str:
    return hashlib.sha256(f"vcomp:{seed}:verity-salt".encode()).hexdigest()


def pad_to_block(image: Path) -> int:
    """Pad ``image`` with zeros to a whole number of blocks; the number of blocks."""
    size = image.stat().st_size
    blocks = -(-size // BLOCK)
    if blocks * BLOCK != size:
        with image.open("r+b") as f:
            f.truncate(blocks * BLOCK)
    return blocks


def format_tree(data: Path, hashes: Path, *, seed: str) -> VerityTree:
    """Write the hash tree of ``data`` (padded in place to whole blocks) to ``hashes``."""
    blocks = pad_to_block(data)
    salt = salt_for(seed)
    tree_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"vcomp:{seed}:verity")
    hashes.unlink(missing_ok=True)
    out = run(["veritysetup", "format", "--data-block-size", str(BLOCK), "--hash-block-size", str(BLOCK),
               "--hash", ALGORITHM, "--salt", salt, "--uuid", str(tree_uuid), data, hashes]).stdout
    found = ROOT_HASH.search(out)
    if found is None:
        raise ToolError("veritysetup format printed no root hash",
                        hint="check cryptsetup-bin's version (2.6 or later) and run with --debug")
    return VerityTree(root_hash=found.group(1).decode(), salt=salt, data_blocks=blocks)
