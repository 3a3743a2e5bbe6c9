"""Publish to an S3-compatible object store (``s3://BUCKET/PREFIX``) with boto3.

Objects are ``PREFIX/metadata/NAME`` and ``PREFIX/targets/NAME``; a reader fetches them over plain HTTP(S)
from the bucket's endpoint (or a CDN in front of it). Each ``PutObject`` carries its ``Content-MD5``, so a torn
upload is refused by the store; an object appears whole or not at all. Names that never change get a long
``Cache-Control``; ``root.json`` and ``timestamp.json`` get ``no-cache``.

Credentials, the endpoint, timeouts and the one-line errors: composer/s3client.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import s3client
from composer.errors import FetchError
from composer.repo.publish import METADATA, TARGETS
from composer.repo.push import LOG

CHANGING = ("root.json", "timestamp.json")
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Publisher:
    """``bucket``/``prefix`` through one boto3 client (made by :func:`open_s3`)."""

    where: str
    bucket: str
    prefix: str
    client: Any

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def present(self, keys: Iterable[str]) -> frozenset[str]:
        return frozenset(set(keys) & self._list(self._key("")))

    def get_log(self) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(LOG))["Body"]
            return bytes(body.read())
        except Exception as exc:
            if s3client.error_code(exc) in s3client.ABSENT:
                return None
            raise s3client.failure(f"s3://{self.bucket}/{self._key(LOG)}", exc) from None

    def put_log(self, data: bytes) -> None:
        self._put(LOG, data, True)

    def delete(self, keys: Iterable[str]) -> None:
        batch = [{"Key": self._key(k)} for k in keys]
        for i in range(0, len(batch), 1000):    # DeleteObjects takes 1000 keys at most
            try:
                done = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch[i:i + 1000],
                                                                              "Quiet": True})
            except Exception as exc:
                raise s3client.failure(f"{self.where} (deleting {batch[i]['Key']} ...)", exc) from None
            for error in done.get("Errors", ()):
                raise FetchError(f"s3://{self.bucket}/{error.get('Key')}: not deleted: {error.get('Code')}",
                                 hint="give the credentials s3:DeleteObject on the bucket, then " + s3client.RESUME)

    def _list(self, start: str) -> set[str]:
        """Every key below the prefix that starts with ``start`` (without the prefix)."""
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: set[str] = set()
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                found.update(o["Key"][strip:] for o in page.get("Contents", ()))
        except Exception as exc:    # botocore's many classes: one line, below
            raise s3client.failure(f"{self.where} (listing {start or '/'})", exc) from None
        return found

    def put_metadata(self, name: str, data: bytes) -> None:
        self._put(f"{METADATA}/{name}", data, name in CHANGING)

    def put_target(self, name: str, data: bytes) -> None:
        self._put(f"{TARGETS}/{name}", data, False)

    def put_target_file(self, name: str, source: Path) -> None:
        """Uploads ``source`` (left in place)."""
        self._put(f"{TARGETS}/{name}", source, False)

    def _put(self, key: str, body: bytes | Path, changing: bool) -> None:
        md5 = s3client.content_md5(body)
        extra = {"ContentType": "application/json" if key.endswith(".json") else "application/octet-stream",
                 "CacheControl": "no-cache" if changing else IMMUTABLE_CACHE}
        target = f"s3://{self.bucket}/{self._key(key)}"
        try:
            if isinstance(body, bytes):
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body, ContentMD5=md5, **extra)
            else:
                with body.open("rb") as f:
                    self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=f, ContentMD5=md5, **extra)
        except Exception as exc:
            raise s3client.failure(target, exc) from None


def open_s3(url: str) -> S3Publisher:
    """``s3://BUCKET[/PREFIX]`` -> a publisher with its client (timeouts and attempts bounded)."""
    where = s3client.parse_url(url)
    return S3Publisher(where=url, bucket=where.bucket, prefix=where.prefix, client=s3client.client())
