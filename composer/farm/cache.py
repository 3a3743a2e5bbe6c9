"""A shared content-addressed build cache: a directory, an HTTP(S) location or an S3 bucket (docs/farm.md).

Layout (the same on disk, over HTTP and under an S3 prefix, so any static server can serve a directory for
reads)::

    entries/<input digest>.json   {"signed": {"digest": D, "files": [[name, sha256], ...]}, "keyid": K,
                                   "signature": "ed25519:..."}   (main package first, then its split packages)
    blobs/<sha256>                the package bytes

The key is the build-all input digest (composer.package.build.recipe_inputs), so an entry is only ever reused
for exactly the inputs it was built from. An entry is used only when its signature verifies with the builder's
own key and every blob has the sha256 the signed entry names; anything else is refused and rebuilt.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from composer import s3client
from composer.errors import UserError
from composer.fsutil import atomic_copy, atomic_output, atomic_write, canonical_json, sha256_bytes
from composer.trust.keys import PublicKey, SigningKey

MAX_ENTRY = 64 * 1024                 # an entry is a few hundred bytes
MAX_BLOB = 2 * 1024 * 1024 * 1024     # a package
HTTP_TIMEOUT = 60.0
HEX64 = re.compile(r"^[0-9a-f]{64}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~%-]{0,250}\.vpk$")   # %3a: an epoch's colon in a file name


class Store(Protocol):
    """Where entries and blobs live: ``get`` is None when absent; ``put`` writes (or raises UserError).
    ``get_file``/``put_file`` stream a large blob (an image output) to or from a file, never whole in memory:
    ``get_file`` returns False when absent or longer than ``limit``; ``put_file`` does not upload a blob the store
    already holds with that size (blob names are their sha256, and readers check it)."""

    def get(self, rel: str, limit: int) -> bytes | None: ...

    def put(self, rel: str, data: bytes) -> None: ...

    def get_file(self, rel: str, dest: Path, limit: int) -> bool: ...

    def put_file(self, rel: str, source: Path) -> None: ...


STREAM_CHUNK = 1 << 20


def _stream(src: BinaryIO, dest: Path, limit: int) -> bool:
    """Copy ``src`` into ``dest`` (atomically); False, and nothing written, past ``limit`` bytes."""
    n = 0
    with atomic_output(dest, durable=False) as out:
        while chunk := src.read(STREAM_CHUNK):
            n += len(chunk)
            if n > limit:
                raise _TooLong
            out.write(chunk)
    return True


class _TooLong(Exception):
    pass


def stream_into(src: BinaryIO, dest: Path, limit: int) -> bool:
    try:
        return _stream(src, dest, limit)
    except _TooLong:
        return False


@dataclass(frozen=True, slots=True)
class DirStore:
    """A directory (local, NFS, or the one a static HTTP server serves): reads and writes."""
    root: Path

    def get(self, rel: str, limit: int) -> bytes | None:
        path = self.root / rel
        try:
            if path.stat().st_size > limit:
                return None
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def put(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, durable=False)

    def get_file(self, rel: str, dest: Path, limit: int) -> bool:
        try:
            f = (self.root / rel).open("rb")
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise UserError(f"shared cache {self.root / rel}: {exc.strerror or exc}",
                            hint="check the shared cache directory and its permissions") from None
        with f:
            return stream_into(f, dest, limit)

    def put_file(self, rel: str, source: Path) -> None:
        path = self.root / rel
        if path.is_file() and path.stat().st_size == source.stat().st_size:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_copy(source, path, durable=False)


@dataclass(frozen=True, slots=True)
class HttpStore:
    """An HTTP(S) base URL: reads by GET (any static server), writes by PUT (WebDAV, an upload endpoint)."""
    base: str
    writable: bool = True

    def _url(self, rel: str) -> str:
        return self.base.rstrip("/") + "/" + rel

    def get(self, rel: str, limit: int) -> bytes | None:
        resp = self._open(rel)
        if resp is None:
            return None
        with resp:
            data: bytes = resp.read(limit + 1)
        return data if len(data) <= limit else None

    def get_file(self, rel: str, dest: Path, limit: int) -> bool:
        resp = self._open(rel)
        if resp is None:
            return False
        try:
            with resp:
                return stream_into(resp, dest, limit)
        except (http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            raise UserError(f"shared cache {self._url(rel)}: the download broke off ({exc!r})",
                            hint=SERVER_HINT) from None

    def _open(self, rel: str) -> Any:
        """The response to GET ``rel`` (to close), or None when the server has no such file."""
        try:
            return urllib.request.urlopen(self._url(rel), timeout=HTTP_TIMEOUT)
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404, 410):
                return None
            raise UserError(f"shared cache {self._url(rel)}: HTTP {exc.code} {exc.reason}",
                            hint=SERVER_HINT) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"shared cache {self._url(rel)}: cannot connect ({reason})",
                            hint=SERVER_HINT) from None

    def put(self, rel: str, data: bytes) -> None:
        self._put(rel, data, len(data))

    def put_file(self, rel: str, source: Path) -> None:
        size = source.stat().st_size
        if self.writable and self._size(rel) == size:
            return
        with source.open("rb") as f:
            self._put(rel, f, size)

    def _size(self, rel: str) -> int | None:
        """The length a HEAD request reports for ``rel`` (None: absent, unknown or unreachable)."""
        try:
            req = urllib.request.Request(self._url(rel), method="HEAD")
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                length = resp.headers.get("Content-Length")
                return int(length) if length is not None and length.isdigit() else None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
            return None

    def _put(self, rel: str, body: bytes | BinaryIO, length: int) -> None:
        if not self.writable:
            return
        req = urllib.request.Request(self._url(rel), data=body, method="PUT",
                                     headers={"Content-Type": "application/octet-stream",
                                              "Content-Length": str(length)})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT):
                pass
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"shared cache {self._url(rel)}: upload by PUT failed ({reason})",
                            hint="the server must accept PUT (WebDAV); or share a directory, or use "
                                 "--shared-cache-read-only (VCOMP_SHARED_CACHE_KEY=KEY.pub for image builds)") from None


@dataclass(frozen=True, slots=True)
class S3Store:
    """``s3://BUCKET[/PREFIX]`` (boto3, the ``[s3]`` extra; credentials and endpoint from the SDK's chain as for
    ``repo publish --to s3://``): GetObject and PutObject (with its Content-MD5: whole or not at all)."""
    where: s3client.Location
    client: Any

    def get(self, rel: str, limit: int) -> bytes | None:
        key = self.where.key(rel)
        try:
            obj = self.client.get_object(Bucket=self.where.bucket, Key=key)
            if int(obj.get("ContentLength", 0)) > limit:
                return None
            data = bytes(obj["Body"].read(limit + 1))
        except Exception as exc:     # botocore's many classes: absent, or one line
            if s3client.error_code(exc) in s3client.ABSENT:
                return None
            raise s3client.failure(f"shared cache s3://{self.where.bucket}/{key}", exc, retry=RETRY) from None
        return data if len(data) <= limit else None

    def put(self, rel: str, data: bytes) -> None:
        key = self.where.key(rel)
        try:
            self.client.put_object(Bucket=self.where.bucket, Key=key, Body=data, ContentMD5=s3client.content_md5(data),
                                   ContentType="application/octet-stream")
        except Exception as exc:
            raise s3client.failure(f"shared cache s3://{self.where.bucket}/{key}", exc, retry=RETRY) from None

    def get_file(self, rel: str, dest: Path, limit: int) -> bool:
        key = self.where.key(rel)
        try:
            obj = self.client.get_object(Bucket=self.where.bucket, Key=key)
            if int(obj.get("ContentLength", 0)) > limit:
                return False
            return stream_into(obj["Body"], dest, limit)
        except Exception as exc:     # botocore's many classes: absent, or one line
            if s3client.error_code(exc) in s3client.ABSENT:
                return False
            raise s3client.failure(f"shared cache s3://{self.where.bucket}/{key}", exc, retry=RETRY) from None

    def put_file(self, rel: str, source: Path) -> None:
        key = self.where.key(rel)
        try:
            if int(self.client.head_object(Bucket=self.where.bucket, Key=key).get("ContentLength", -1)) == \
                    source.stat().st_size:
                return
        except Exception:   # absent (or not allowed to ask): upload
            pass
        try:   # (the SDK's managed upload: multipart above its threshold, each part checked)
            self.client.upload_file(str(source), self.where.bucket, key,
                                    ExtraArgs={"ContentType": "application/octet-stream"})
        except Exception as exc:
            raise s3client.failure(f"shared cache s3://{self.where.bucket}/{key}", exc, retry=RETRY) from None


def open_s3(location: str) -> S3Store:
    return S3Store(where=s3client.parse_url(location), client=s3client.client())


SERVER_HINT = "check the shared cache URL (--shared-cache or VCOMP_SHARED_CACHE) and that its server is up"
RETRY = ("check the shared cache URL (--shared-cache or VCOMP_SHARED_CACHE) and the store, or use "
         "--shared-cache-read-only (a .pub VCOMP_SHARED_CACHE_KEY for image builds)")


@dataclass(frozen=True, slots=True)
class ReadOnly:
    """Any store, never written (a CI job that only pulls)."""
    inner: Store

    def get(self, rel: str, limit: int) -> bytes | None:
        return self.inner.get(rel, limit)

    def put(self, rel: str, data: bytes) -> None:
        return None

    def get_file(self, rel: str, dest: Path, limit: int) -> bool:
        return self.inner.get_file(rel, dest, limit)

    def put_file(self, rel: str, source: Path) -> None:
        return None


OPENERS: Mapping[str, Callable[[str], Store]] = {
    "http://": HttpStore, "https://": HttpStore,
    "file://": lambda loc: DirStore(Path(loc[len("file://"):])),
    "s3://": open_s3,
}


def open_store(location: str, *, read_only: bool = False) -> Store:
    """The store of ``--shared-cache LOCATION``: an http(s):// URL, an s3:// URL, a file:// URL or a directory
    path."""
    opener = next((f for prefix, f in OPENERS.items() if location.startswith(prefix)), None)
    if opener is None and "://" in location:
        raise UserError(f"--shared-cache {location}: unsupported scheme",
                        hint="use http://, https://, s3://, file:// or a directory path")
    store = opener(location) if opener else DirStore(Path(location))
    return ReadOnly(store) if read_only else store


# ------------------------------------------------------------------ entries (pure)

def make_entry(digest: str, files: Sequence[tuple[str, str]], key: SigningKey) -> bytes:
    signed = {"digest": digest, "files": [list(f) for f in files]}
    return canonical_json({"signed": signed, "keyid": key.keyid, "signature": key.sign(canonical_json(signed))})


def check_entry(data: bytes, digest: str, public: PublicKey) -> tuple[list[tuple[str, str]], str]:
    """The (name, sha256) files of a cache entry, or ([], why it is refused)."""
    try:
        doc = json.loads(data)
        signed, signature = doc["signed"], doc["signature"]
        files = [(str(n), str(h)) for n, h in signed["files"]]
    except (ValueError, KeyError, TypeError):
        return [], "not a cache entry"
    if not isinstance(signature, str) or not public.verify(signature, canonical_json(signed)):
        return [], "unsigned or signed by another key"
    if signed.get("digest") != digest:
        return [], "signed for other inputs"
    if not files or not all(NAME.match(n) and HEX64.match(h) for n, h in files):
        return [], "bad file list"
    return files, ""


# ------------------------------------------------------------------ fetch and push (I/O)

def entry_path(digest: str) -> str:
    return f"entries/{digest}.json"


def fetch(store: Store, digest: str, public: PublicKey, out_dir: Path) -> tuple[list[Path], str]:
    """Download a verified entry's packages into ``out_dir``: (paths, '') or ([], why not: 'absent' or refused)."""
    data = store.get(entry_path(digest), MAX_ENTRY)
    if data is None:
        return [], "absent"
    files, why = check_entry(data, digest, public)
    if why:
        return [], why
    blobs: list[tuple[str, bytes]] = []
    for name, sha in files:
        blob = store.get(f"blobs/{sha}", MAX_BLOB)
        if blob is None:
            return [], f"blob of {name} missing"
        if sha256_bytes(blob) != sha:
            return [], f"{name} does not match its signed sha256"
        blobs.append((name, blob))
    out: list[Path] = []
    for name, blob in blobs:
        atomic_write(out_dir / name, blob, durable=False)
        out.append(out_dir / name)
    return out, ""


def push(store: Store, digest: str, files: Sequence[tuple[str, bytes]], key: SigningKey) -> None:
    """Store the packages built from ``digest``: blobs first, then the signed entry that names them."""
    listed: list[tuple[str, str]] = []
    for name, blob in files:
        sha = sha256_bytes(blob)
        store.put(f"blobs/{sha}", blob)
        listed.append((name, sha))
    store.put(entry_path(digest), make_entry(digest, listed, key))
