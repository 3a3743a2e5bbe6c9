"""metadata/'s role versions kept in the state, so that a writer does not list metadata/ on every command.

A repository keeps every version of every role (consistent snapshots): at a million packages metadata/ holds
38,000 files, and listing and parsing it to find each role's newest version took 40 ms of every writer's start
(the repair, then publish). The state (state.db, composer/repo/statedb.py) keeps that listing instead, in the
table ``role_versions``, with a mark ``metadata_listing`` = ``{"clean": bool, "mtime_ns": N}``:

* a writer (under the repository's lock, composer/repo/guard.py ``locked``) reads the table when the mark is
  clean **and** metadata/'s inode, change and modification times are the ones recorded
  (:func:`directory_mark`); otherwise it lists metadata/ as before;
* before its first metadata write it marks the listing not clean (one transaction);
* after it finished, it records the versions it wrote (or, after listing, the whole listing) and the mark,
  clean, with metadata/'s times then, in one transaction; but when metadata/ changed since its own last write
  (or since the repair, when it wrote nothing), something else wrote there meanwhile and it records the mark
  not clean.

A writer killed or failing between the two leaves the mark not clean, so the next writer lists metadata/ (and
removes the temporary files the killed one left, which a clean mark rules out). The directory's times catch a
change made behind vcomp's back (a file copied into metadata/, a backup restored over it, even with its times
kept: the change time cannot be set): every file vcomp writes there goes through a temporary name in metadata/
itself, so the directory's times change with each. Commands that write without the lock wrapper
(``repo init``, ``repo migrate``) never record a mark, and change those times. Not caught: an outside change in
the same tick of the file system's clock as a vcomp writer's last write (a few milliseconds on older kernels)
while that writer holds the lock; the next listing (after any kill or failure) repairs it.

:class:`JournalListing` is the read side: the role versions of a clean state, asked role by role (an indexed
query each), or all but the sparse bins at once (what the repair and publish compare), with this command's own
writes on top.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from composer.repo.statedb import StateDB

MAX_VERSION_DIGITS = 18   # a version SQLite stores (a 64-bit integer); a longer one is not a role's version


def parse_name(name: str) -> tuple[str, int] | None:
    """``N.ROLE.json`` -> (ROLE, N); None for any other name in metadata/ (N: ASCII digits, at most 18; a name
    that is not valid UTF-8 is no role's)."""
    version, _, rest = name.partition(".")
    if not (version.isascii() and version.isdigit() and len(version) <= MAX_VERSION_DIGITS
            and rest.endswith(".json") and len(rest) > len(".json")):
        return None
    try:
        rest.encode("utf-8")
    except UnicodeEncodeError:   # (os.listdir gives undecodable bytes as lone surrogates)
        return None
    return rest[:-len(".json")], int(version)


def directory_mark(path: Path) -> dict[str, int]:
    """What the state records of metadata/ itself: its inode, change and modification times (a restore that
    keeps modification times, ``cp -a``/``rsync -a``/``touch -r``, still changes the change time, which no
    program can set)."""
    st = os.stat(path)
    return {"ino": st.st_ino, "ctime_ns": st.st_ctime_ns, "mtime_ns": st.st_mtime_ns}


class JournalListing(Mapping[str, int]):
    """role -> newest version, from a clean state's ``role_versions`` (see the module docstring), plus what
    this store wrote (:meth:`add`). Iterating reads the whole table."""

    def __init__(self, db: StateDB) -> None:
        self._db = db
        self._known: dict[str, int | None] = {}   # asked or written (None: not there)
        self._except: tuple[str, dict[str, int]] | None = None   # (prefix, every role not starting with it)

    def add(self, role: str, version: int) -> None:
        old = self.get(role)
        if old is None or old < version:
            self._known[role] = version
            if self._except is not None and not role.startswith(self._except[0]):
                self._except[1][role] = version

    def get(self, key: str, default: int | None = None) -> int | None:  # type: ignore[override]
        if key not in self._known:
            if self._except is not None and not key.startswith(self._except[0]):
                self._known[key] = self._except[1].get(key)
            else:
                self._known[key] = self._db.role_version(key)
        found = self._known[key]
        return default if found is None else found

    def __getitem__(self, key: str) -> int:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def versions_except(self, prefix: str) -> dict[str, int]:
        """role -> version of every role not starting with ``prefix`` (one query, kept for later ones)."""
        if self._except is None or self._except[0] != prefix:
            found = self._db.role_versions_except(prefix)
            for role, version in self._known.items():   # this command's writes
                if version is not None and not role.startswith(prefix) and found.get(role, 0) < version:
                    found[role] = version
            self._except = (prefix, found)
        return dict(self._except[1])

    def _all(self) -> dict[str, int]:
        found = self._db.all_role_versions()
        for role, version in self._known.items():
            if version is not None and found.get(role, 0) < version:
                found[role] = version
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
