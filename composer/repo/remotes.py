"""The table of publishing destinations: one row per URL scheme ``vcomp repo publish --to`` and ``vcomp repo
mirror --to`` push to (the order and the rules: :mod:`composer.repo.push`).

| scheme | module | |
| ``s3`` | :mod:`composer.repo.s3_publisher` | an S3-compatible object store (boto3) |
| ``dav+http``, ``dav+https`` | :mod:`composer.repo.dav_publisher` | a static HTTP server taking WebDAV PUT |
| ``file`` or a plain path | here | another directory (copies, atomically) |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from composer.errors import UserError
from composer.fsutil import atomic_copy, atomic_write
from composer.repo.dav_publisher import open_dav
from composer.repo.publish import METADATA, TARGETS
from composer.repo.push import LOG, RemotePublisher
from composer.repo.s3_publisher import open_s3


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryCopy:
    """Another directory: each file copied atomically (the source stays where it is)."""

    where: str
    root: Path

    def present(self, keys: Iterable[str]) -> frozenset[str]:
        return frozenset(k for k in keys if (self.root / k).is_file())

    def get_log(self) -> bytes | None:
        try:
            return (self.root / LOG).read_bytes()
        except FileNotFoundError:
            return None

    def put_log(self, data: bytes) -> None:
        atomic_write(self.root / LOG, data)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            (self.root / key).unlink(missing_ok=True)

    def put_metadata(self, name: str, data: bytes) -> None:
        atomic_write(self.root / METADATA / name, data)

    def put_target(self, name: str, data: bytes) -> None:
        atomic_write(self.root / TARGETS / name, data)

    def put_target_file(self, name: str, source: Path) -> None:
        atomic_copy(source, self.root / TARGETS / name)


def open_directory(url: str) -> DirectoryCopy:
    path = Path(urlsplit(url).path) if "://" in url else Path(url)
    return DirectoryCopy(where=url, root=path)


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    scheme: str
    summary: str
    open: Callable[[str], RemotePublisher]


DESTINATIONS: dict[str, Destination] = {d.scheme: d for d in (
    Destination(scheme="s3", summary="an S3-compatible object store (boto3; AWS_* credentials)", open=open_s3),
    Destination(scheme="dav+http", summary="a static HTTP server taking WebDAV PUT (~/.netrc)", open=open_dav),
    Destination(scheme="dav+https", summary="the same over HTTPS", open=open_dav),
    Destination(scheme="file", summary="another directory", open=open_directory),
)}


def open_destination(url: str) -> RemotePublisher:
    """The publisher for ``url`` (a path without ``://`` is a directory)."""
    scheme = urlsplit(url).scheme if "://" in url else "file"
    row = DESTINATIONS.get(scheme)
    if row is None:
        raise UserError(f"--to {url}: no publisher for {scheme}://",
                        hint="use one of " + ", ".join(f"{s}://" for s in DESTINATIONS) + " or a directory")
    return row.open(url)
