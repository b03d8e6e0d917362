"""Bounded reads: no header, frame or JSON payload makes a reader allocate what it claims.

The memory bounds are measured as the growth of peak RSS in a fresh child process that
decodes one crafted record (imports and a warm-up happen before the baseline).
"""

from __future__ import annotations

import bz2
import logging
import struct
import subprocess
import sys
import textwrap
import zlib
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from resultkit.errors import RecordCorruptError, SerializationError
from resultkit.results import ResultStore
from resultkit.results.checksum import XXH3_128, checksum
from resultkit.results.record import ResultRecordMetadata, encode_header
from resultkit.serializers import CompressedSerializer
from resultkit.storage import LocalStorage, S3Storage, Storage

from .conftest import rewrite_header

BOUND = 64 << 20  # peak RSS growth allowed for decoding a crafted record of about 1 KB


def plant(storage: Storage, key: str, serializer: dict[str, object], payload: bytes) -> None:
    """A well-formed record (valid header hash and payload checksum) around a crafted payload."""
    view = memoryview(payload)
    metadata = ResultRecordMetadata(
        storage_key=key, serializer=serializer, created=datetime.now(timezone.utc),
        payload_size=len(payload), payload_hash=checksum((view,), XXH3_128, len(payload)),
    )
    storage.write(key, encode_header(metadata) + payload)


@pytest.mark.parametrize("claimed", [2**40, 2**63, 2**64 - 1])
def test_a_header_claiming_a_huge_payload_is_corrupt_not_an_allocation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, claimed: int,
) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", b"z" * (200 << 10))  # past the first read: the payload is streamed
    rewrite_header(storage, "big", payload_size=claimed)
    with pytest.raises(RecordCorruptError, match=f"payload_size|{claimed}"):
        store.read("big")
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup("big") is None
    with pytest.raises(RecordCorruptError):
        store.verify("big")


def test_a_header_claiming_a_huge_payload_on_s3_is_corrupt(s3_bucket: str, s3_endpoint: str) -> None:
    storage = S3Storage(s3_bucket, "r", endpoint_url=s3_endpoint, skip_instance_cache=True)
    storage.first_read_size = 64 << 10
    store = ResultStore(storage)
    store.write("big", b"z" * (200 << 10))
    rewrite_header(storage, "big", payload_size=2**64 - 1)
    with pytest.raises(RecordCorruptError, match="payload_size"):
        store.read("big")


def test_a_header_claiming_fewer_bytes_than_streamed_is_corrupt(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", b"z" * (200 << 10))
    rewrite_header(storage, "big", payload_size=100 << 10)
    with pytest.raises(RecordCorruptError, match="payload_size"):
        store.read("big")


def _zstd_frame_claiming(size: int) -> bytes:
    """19 bytes: a single-segment zstd frame declaring ``size`` bytes, holding one 3-byte raw block."""
    magic = struct.pack("<I", 0xFD2FB528)
    descriptor = bytes([0b1110_0000])  # 8-byte content size, single segment
    block = (3 << 3 | 0 << 1 | 1).to_bytes(3, "little") + b"abc"  # last block, raw, 3 bytes
    return magic + descriptor + struct.pack("<Q", size) + block


def _object_array_claiming(count: int) -> bytes:
    return orjson.dumps({"__rk__": "ndarray", "dtype": "object", "shape": [count], "v": []})


@pytest.fixture(scope="module")
def bz2_bomb() -> bytes:
    """About 100 bytes of bz2 that decompress to 128 MiB of zeros."""
    compressor = bz2.BZ2Compressor(9)
    zeros = bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(128)) + compressor.flush()


def _peak_growth(tmp_path: Path, key: str) -> tuple[int, str]:
    """(peak RSS growth in bytes, outcome) of a child process looking ``key`` up in ``tmp_path``."""
    script = textwrap.dedent(f"""
        import logging, resource, sys
        import numpy, zstandard
        from resultkit.results import ResultStore
        from resultkit.errors import ResultkitError
        store = ResultStore({str(tmp_path)!r})
        store.warm_up()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            store.read({key!r})
            outcome = "read"
        except ResultkitError as exc:
            outcome = type(exc).__name__ + ": " + str(exc)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) * 1024)
        print(outcome)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    growth, outcome = done.stdout.splitlines()[:2]
    return int(growth), outcome


def test_a_zstd_frame_claiming_1_gib_is_refused_before_allocating(tmp_path: Path) -> None:
    frame = _zstd_frame_claiming(1 << 30)
    assert len(frame) == 19
    plant(LocalStorage(tmp_path), "zstd", CompressedSerializer("pickle").to_config(), frame)
    with pytest.raises(SerializationError, match="max_expansion"):
        ResultStore(tmp_path).read("zstd")
    growth, outcome = _peak_growth(tmp_path, "zstd")
    assert outcome.startswith("SerializationError") and growth < BOUND


def test_a_json_payload_declaring_a_huge_object_array_allocates_nothing(tmp_path: Path) -> None:
    payload = _object_array_claiming(1 << 27)  # 1 GiB of pointers, in 71 bytes
    assert len(payload) < 100
    plant(LocalStorage(tmp_path), "json", {"type": "json", "jsonlib": "orjson"}, payload)
    with pytest.raises(SerializationError, match="holds 134217728 items"):
        ResultStore(tmp_path).read("json")
    growth, outcome = _peak_growth(tmp_path, "json")
    assert outcome.startswith("SerializationError") and growth < BOUND


def test_a_json_shape_that_matches_its_items_still_loads(tmp_path: Path) -> None:
    import numpy

    store = ResultStore(tmp_path, serializer="json")
    value = numpy.array([[1, "a"], [None, 2.5]], dtype=object)
    assert (store.read(store.write("ok", value).metadata.storage_key).result == value).all()


def test_a_bz2_bomb_stops_at_the_expansion_bound(tmp_path: Path, bz2_bomb: bytes) -> None:
    assert len(bz2_bomb) < 1024
    config = CompressedSerializer("pickle", compressionlib="bz2").to_config()
    plant(LocalStorage(tmp_path), "bomb", config, bz2_bomb)
    with pytest.raises(SerializationError, match="max_expansion"):
        ResultStore(tmp_path).read("bomb")
    growth, outcome = _peak_growth(tmp_path, "bomb")
    assert outcome.startswith("SerializationError") and growth < BOUND


@pytest.mark.parametrize("compressionlib", ["zlib", "lzma", "bz2", "zstandard"])
def test_every_codec_enforces_max_expansion(monkeypatch: pytest.MonkeyPatch, compressionlib: str) -> None:
    value = bytes(range(256)) * (4 << 10)  # 1 MiB that every codec shrinks 250-6000 fold
    serializer = CompressedSerializer("pickle", compressionlib=compressionlib)
    payload = serializer.dumps(value)
    assert serializer.loads(payload) == value
    monkeypatch.setattr(CompressedSerializer, "max_expansion", 50)
    with pytest.raises(SerializationError, match="max_expansion = 50"):
        serializer.loads(payload)


def test_an_unsized_zstd_frame_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import zstandard

    payload = zstandard.ZstdCompressor(write_content_size=False).compress(pickle.dumps(bytes(4 << 20)))
    serializer = CompressedSerializer("pickle")
    assert serializer.loads(payload) == bytes(4 << 20)
    with pytest.raises(SerializationError, match="truncated"):
        serializer.loads(payload[:-8])
    monkeypatch.setattr(CompressedSerializer, "max_expansion", 50)
    with pytest.raises(SerializationError, match="max_expansion"):
        serializer.loads(payload)


def test_a_truncated_zlib_stream_is_an_error() -> None:
    payload = zlib.compress(b"x" * 1000)[:-4]
    with pytest.raises(SerializationError):
        CompressedSerializer("pickle", compressionlib="zlib").loads(payload)
