"""Succinct hash bins (PEP 458, TAP 15), shared by the sparse index and the developer roles.

A role delegates a set of target paths to ``2**bits`` bins named ``PREFIX-XX``: the bin of a path is the first
``bits`` bits of the sha256 of the path (python-tuf's ``SuccinctRoles``), so a delegator names no path and a
client finds the one bin to read from the path alone. One change re-signs the bins whose lists changed.

Pure: the bin count, the delegation and the assignment of paths to bins (docs/repo-sparse.md,
docs/repo-devbins.md). Signing them is :func:`sign_bin`'s, at the edge (the store writes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from tuf.api.metadata import Delegations, Metadata, SuccinctRoles, TargetFile, Targets

from composer.repo.store import RepoStore, expires
from composer.trust.keys import SigningKey

FILES_PER_BIN = 256      # a bin's target count the number of bins aims at (a bin is ~40 KB of metadata)
MAX_BIN_BITS = 14        # at most 16,384 bins (PEP 458's count for PyPI)


def bin_bits(files: int, per_bin: int = FILES_PER_BIN) -> int:
    """Hash-bin prefix bits for ``files`` targets: about ``per_bin`` per bin, 2 to 2**MAX_BIN_BITS bins."""
    return max(1, min(MAX_BIN_BITS, math.ceil(math.log2(max(files, 1) / per_bin))))


def succinct_delegations(keys: Mapping[str, object], threshold: int, bits: int, prefix: str) -> Delegations:
    """A delegation of every path to ``2**bits`` bins ``PREFIX-XX``, each signed by ``threshold`` of ``keys``
    (keyid -> securesystemslib key)."""
    succinct = SuccinctRoles(keyids=sorted(keys), threshold=threshold, bit_length=bits, name_prefix=prefix)
    return Delegations(keys={k: keys[k] for k in sorted(keys)}, succinct_roles=succinct)  # type: ignore[misc]


def assign(succinct: SuccinctRoles, files: Iterable[tuple[str, TargetFile]]) -> dict[str, dict[str, TargetFile]]:
    """bin name -> the targets it lists, for every bin (an empty bin lists nothing but is still signed: a
    client looking up a path that hashes there must find a signed "no such target")."""
    listed: dict[str, dict[str, TargetFile]] = {name: {} for name in succinct.get_roles()}
    for path, info in files:
        listed[succinct.get_role_for_target(path)][path] = info
    return listed


def in_bin(succinct: SuccinctRoles, name: str, targets: Mapping[str, TargetFile]) -> dict[str, TargetFile]:
    """The targets of bin ``name`` that hash to it (what a client can find there: a path listed in another bin
    is never looked up in this one)."""
    return {p: i for p, i in targets.items() if succinct.get_role_for_target(p) == name}


def sign_bin(store: RepoStore, name: str, targets: Mapping[str, TargetFile], keys: Sequence[SigningKey], *,
             days: int, force: bool = False) -> bool:
    """Sign bin ``name`` listing ``targets`` when its list changed, it would expire within half its period, or
    ``force`` (new keys); return whether it was signed."""
    if store.has_role(name):
        md = store.load(name, Targets)
        if not force and md.signed.targets == targets and md.signed.expires > expires(days // 2):
            return False
        md.signed.version += 1
    else:
        md = Metadata(Targets(version=1))
    md.signed.targets = dict(targets)
    md.signed.expires = expires(days)
    store.sign_and_write(md, name, keys)
    return True
