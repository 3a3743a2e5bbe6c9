"""Publish to an S3-compatible object store (``s3://BUCKET/PREFIX``) with boto3.

Objects are ``PREFIX/metadata/NAME`` and ``PREFIX/targets/NAME``; a reader fetches them over plain HTTP(S)
from the bucket's endpoint (or a CDN in front of it). Each ``PutObject`` carries its ``Content-MD5``, so a torn
upload is refused by the store; an object appears whole or not at all. Names that never change get a long
``Cache-Control``; ``root.json`` and ``timestamp.json`` get ``no-cache``.

Credentials and the endpoint come from the SDK's own chain, never from the command line: ``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE`` / ``~/.aws/credentials``, ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``) for a store other than AWS, ``AWS_DEFAULT_REGION``. Every request has a connect and a
read timeout and a bounded number of attempts (:data:`LIMITS`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from composer.errors import FetchError, UserError
from composer.repo.publish import METADATA, TARGETS
from composer.repo.push import LOG

CHANGING = ("root.json", "timestamp.json")
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadLimits:
    connect_seconds: float = 10.0
    read_seconds: float = 60.0
    attempts: int = 4


LIMITS = UploadLimits()

# error code -> the fix (one line per failure: the object, what happened, this)
HINTS = {
    "NoSuchBucket": "create the bucket first (e.g. aws s3 mb s3://BUCKET) or fix the URL",
    "AccessDenied": "give the credentials s3:PutObject and s3:ListBucket on the bucket (AWS_PROFILE, "
                    "~/.aws/credentials)",
    "InvalidAccessKeyId": "check the credentials: AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws/credentials",
    "SignatureDoesNotMatch": "check the credentials: AWS_SECRET_ACCESS_KEY / AWS_PROFILE / ~/.aws/credentials",
    "BadDigest": "the object changed in transit: run the same command again (the push resumes)",
}
RESUME = "run the same command again: the push resumes, what was uploaded is kept"


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise UserError("publishing to s3:// needs boto3, which is not installed",
                        hint="pip install 'veridian-composer[s3]' (or scripts/setup.sh)") from None
    return boto3


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
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _failure(f"s3://{self.bucket}/{self._key(LOG)}", exc) from None

    def put_log(self, data: bytes) -> None:
        self._put(LOG, data, True)

    def delete(self, keys: Iterable[str]) -> None:
        batch = [{"Key": self._key(k)} for k in keys]
        for i in range(0, len(batch), 1000):    # DeleteObjects takes 1000 keys at most
            try:
                done = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch[i:i + 1000],
                                                                              "Quiet": True})
            except Exception as exc:
                raise _failure(f"{self.where} (deleting {batch[i]['Key']} ...)", exc) from None
            for error in done.get("Errors", ()):
                raise FetchError(f"s3://{self.bucket}/{error.get('Key')}: not deleted: {error.get('Code')}",
                                 hint="give the credentials s3:DeleteObject on the bucket, then " + RESUME)

    def _list(self, start: str) -> set[str]:
        """Every key below the prefix that starts with ``start`` (without the prefix)."""
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: set[str] = set()
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                found.update(o["Key"][strip:] for o in page.get("Contents", ()))
        except Exception as exc:    # botocore's many classes: one line, below
            raise _failure(f"{self.where} (listing {start or '/'})", exc) from None
        return found

    def put_metadata(self, name: str, data: bytes) -> None:
        self._put(f"{METADATA}/{name}", data, name in CHANGING)

    def put_target(self, name: str, data: bytes) -> None:
        self._put(f"{TARGETS}/{name}", data, False)

    def put_target_file(self, name: str, source: Path) -> None:
        """Uploads ``source`` (left in place)."""
        self._put(f"{TARGETS}/{name}", source, False)

    def _put(self, key: str, body: bytes | Path, changing: bool) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        if isinstance(body, bytes):
            digest.update(body)
        else:
            with body.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        md5 = base64.b64encode(digest.digest()).decode()
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
            raise _failure(target, exc) from None


def _failure(place: str, exc: Exception) -> FetchError | UserError:
    """One line: the object, what went wrong, the fix."""
    from botocore import exceptions as bexc
    if isinstance(exc, bexc.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        text = f"{place}: the store refused it: {code} (HTTP {status}): {error.get('Message', '')}".rstrip(": ")
        if code in HINTS:
            return UserError(text, hint=HINTS[code])
        return FetchError(text, hint=RESUME)
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return UserError(f"{place}: no S3 credentials found",
                         hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials")
    if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectTimeoutError):
        return FetchError(f"{place}: cannot reach the store ({exc})",
                          hint="check AWS_ENDPOINT_URL (or the network), then " + RESUME)
    if isinstance(exc, bexc.BotoCoreError | OSError):
        return FetchError(f"{place}: {type(exc).__name__}: {exc}", hint=RESUME)
    raise exc


def open_s3(url: str) -> S3Publisher:
    """``s3://BUCKET[/PREFIX]`` -> a publisher with its client (timeouts and attempts bounded)."""
    parts = urlsplit(url)
    if not parts.netloc or parts.query or parts.fragment:
        raise UserError(f"{url}: not an S3 URL", hint="write s3://BUCKET/PREFIX (the endpoint: AWS_ENDPOINT_URL)")
    boto3 = _boto3()
    from botocore.config import Config
    config = Config(connect_timeout=LIMITS.connect_seconds, read_timeout=LIMITS.read_seconds,
                    retries={"max_attempts": LIMITS.attempts, "mode": "standard"},
                    s3={"addressing_style": "path"})
    client = boto3.session.Session().client("s3", config=config)
    return S3Publisher(where=url, bucket=parts.netloc, prefix=parts.path.strip("/"), client=client)
