"""Fixtures shared by unit test modules."""

from tests.s3serve import s3, s3_endpoint  # noqa: F401 (a real S3 server on 127.0.0.1: publish --to, the farm)
