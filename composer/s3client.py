"""An S3-compatible object store through boto3 (the ``[s3]`` extra): the one client and the one error mapping that
``repo publish --to s3://`` (composer/repo/s3_publisher.py) and the build farm's shared cache
(composer/farm/cache.py) use.

Credentials and the endpoint come from the SDK's own chain, never from the command line: ``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE`` / ``~/.aws/credentials``, ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``) for a store other than AWS, ``AWS_DEFAULT_REGION``. Every request has a connect and a
read timeout and a bounded number of attempts (:data:`LIMITS`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from composer.errors import FetchError, UserError


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadLimits:
    connect_seconds: float = 10.0
    read_seconds: float = 60.0
    attempts: int = 4


LIMITS = UploadLimits()

# error code -> the fix (one line per failure: the object, what happened, this)
HINTS = {
    "NoSuchBucket": "create the bucket first (e.g. aws s3 mb s3://BUCKET) or fix the URL",
    "AccessDenied": "give the credentials s3:PutObject, s3:GetObject and s3:ListBucket on the bucket "
                    "(AWS_PROFILE, ~/.aws/credentials)",
    "InvalidAccessKeyId": "check the credentials: AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws/credentials",
    "SignatureDoesNotMatch": "check the credentials: AWS_SECRET_ACCESS_KEY / AWS_PROFILE / ~/.aws/credentials",
    "BadDigest": "the object changed in transit: run the same command again (the push resumes)",
}
RESUME = "run the same command again: the push resumes, what was uploaded is kept"
ABSENT = ("NoSuchKey", "404")


@dataclass(frozen=True, slots=True)
class Location:
    """``s3://BUCKET[/PREFIX]``, split."""
    url: str
    bucket: str
    prefix: str

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel


def parse_url(url: str) -> Location:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UserError(f"{url}: not an S3 URL", hint="write s3://BUCKET/PREFIX (the endpoint: AWS_ENDPOINT_URL)")
    return Location(url=url, bucket=parts.netloc, prefix=parts.path.strip("/"))


def content_md5(body: bytes | Path) -> str:
    """The ``Content-MD5`` of a PutObject body (the store refuses a torn upload: whole or not at all)."""
    digest = hashlib.md5(usedforsecurity=False)
    if isinstance(body, bytes):
        digest.update(body)
    else:
        with body.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise UserError("s3:// needs boto3, which is not installed",
                        hint="pip install 'veridian-composer[s3]' (or scripts/setup.sh)") from None
    return boto3


def client() -> Any:
    """A boto3 S3 client with bounded timeouts and attempts, path-style addressing (any S3-compatible store)."""
    boto3 = _boto3()
    from botocore.config import Config
    config = Config(connect_timeout=LIMITS.connect_seconds, read_timeout=LIMITS.read_seconds,
                    retries={"max_attempts": LIMITS.attempts, "mode": "standard"},
                    s3={"addressing_style": "path"})
    return boto3.session.Session().client("s3", config=config)


def error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def failure(place: str, exc: Exception, *, retry: str = RESUME) -> FetchError | UserError:
    """One line: the object, what went wrong, the fix (``retry`` when running again is the fix)."""
    from botocore import exceptions as bexc
    if isinstance(exc, bexc.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        text = f"{place}: the store refused it: {code} (HTTP {status}): {error.get('Message', '')}".rstrip(": ")
        if code in HINTS:
            return UserError(text, hint=HINTS[code])
        return FetchError(text, hint=retry)
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return UserError(f"{place}: no S3 credentials found",
                         hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials")
    if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectTimeoutError):
        return FetchError(f"{place}: cannot reach the store ({exc})",
                          hint="check AWS_ENDPOINT_URL (or the network), then " + retry)
    if isinstance(exc, bexc.BotoCoreError | OSError):
        return FetchError(f"{place}: {type(exc).__name__}: {exc}", hint=retry)
    raise exc
