"""A zstd frame is hostile until checked: its header's declared size is checked before python-zstandard
allocates it (it allocates what the header declares and then ignores ``max_output_size``), at every place vcomp
decompresses a whole frame from outside: the whole index, an advisory feed, a package delta, an image chunk."""

from __future__ import annotations

import struct

import pytest
import zstandard

from composer import limits
from composer.advisory import feed
from composer.errors import VerificationError
from composer.repo import deltas
from composer.repo.index import MAX_INDEX_BYTES, decode_index

TERABYTE = 1 << 40


def lying_frame(data: bytes, declared: int) -> bytes:
    """A real frame of ``data`` whose header declares ``declared`` bytes instead (single segment, 8-byte size)."""
    frame = zstandard.ZstdCompressor(write_checksum=False).compress(data)
    rest = frame[zstandard.frame_header_size(frame):]
    out = frame[:4] + bytes([(3 << 6) | (1 << 5)]) + struct.pack("<Q", declared) + rest
    assert zstandard.frame_content_size(out) == declared
    return out


def test_a_frame_declaring_more_than_the_limit_is_refused_before_allocating() -> None:
    with pytest.raises(zstandard.ZstdError, match="declares 1099511627776 bytes"):
        limits.unzstd(lying_frame(b"x" * 1000, TERABYTE), 1 << 20)


def test_a_frame_without_a_declared_size_is_bounded_by_the_limit() -> None:
    stream = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    frame = stream.compress(b"y" * 5000) + stream.flush()
    assert zstandard.frame_content_size(frame) == -1
    assert limits.unzstd(frame, 5000) == b"y" * 5000
    with pytest.raises(zstandard.ZstdError):
        limits.unzstd(frame, 4999)


def test_an_honest_frame_round_trips() -> None:
    data = bytes(range(256)) * 40
    assert limits.unzstd(zstandard.ZstdCompressor().compress(data), len(data)) == data


def test_a_whole_index_declaring_more_than_a_client_reads_is_one_limit_error() -> None:
    with pytest.raises(limits.PackageLimitExceeded, match=rf"repo: index/x86_64.json.zst: the index decompresses "
                                                          rf"to {TERABYTE} bytes, more than the {MAX_INDEX_BYTES}"):
        decode_index(lying_frame(b"{}", TERABYTE), "repo: index/x86_64.json.zst")
    with pytest.raises(VerificationError, match="malformed index"):
        decode_index(b"\x28\xb5\x2f\xfd", "repo: index/x86_64.json.zst")   # a truncated header


def test_a_lying_advisory_feed_is_a_malformed_feed() -> None:
    with pytest.raises(VerificationError, match="malformed advisory feed.*declares"):
        feed.decode(lying_frame(b"{}", TERABYTE), "repo: advisories/osv.json.zst")


def test_a_lying_package_delta_is_refused_and_the_full_package_is_fetched() -> None:
    old, new = b"a" * 4096, b"a" * 4000 + b"b" * 96
    assert deltas.apply_delta(old, deltas.make_delta(old, new), len(new), origin="d") == new
    with pytest.raises(VerificationError, match="not a zstd delta"):
        deltas.apply_delta(old, lying_frame(b"b" * 96, TERABYTE), len(new), origin="d")
