"""Damaged records: ``read`` raises RecordCorruptError, ``lookup`` is a miss with a warning."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import numpy as np
import pytest

from resultkit.errors import RecordCorruptError
from resultkit.results import ResultStore

SMALL = {"model": "ridge", "alpha": 0.5, "coef": [1.5, -2.0, 3.25]}
LARGE = np.arange(100_000, dtype=np.float64)  # 800 KB: streamed, not served by the first read


def flip_bit(data: bytes, index: int) -> bytes:
    damaged = bytearray(data)
    damaged[index] ^= 0x10
    return bytes(damaged)


def header_length(data: bytes) -> int:
    return data.index(b"\n") + 1


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "truncated-by-one-byte": lambda raw: raw[:-1],
    "truncated-to-half": lambda raw: raw[: len(raw) // 2],
    "truncated-inside-header": lambda raw: raw[: header_length(raw) // 2],
    "truncated-to-header-only": lambda raw: raw[: header_length(raw)],
    "payload-bit-flipped": lambda raw: flip_bit(raw, (header_length(raw) + len(raw)) // 2),
    "last-payload-byte-flipped": lambda raw: flip_bit(raw, len(raw) - 1),
    "header-bit-flipped": lambda raw: flip_bit(raw, header_length(raw) // 3),
    "header-digit-changed": lambda raw: raw.replace(b'"python_version":"3', b'"python_version":"4', 1),
    "bytes-appended": lambda raw: raw + b"\x00",
    "garbage": lambda raw: random.Random(7).randbytes(len(raw)),
    "garbage-line": lambda raw: b"this is not a record\n" + raw,
    "empty": lambda raw: b"",
}


@pytest.mark.parametrize("value", [SMALL, LARGE], ids=["small", "large"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_record_is_corrupt_on_read_and_a_miss_on_lookup(
    store: ResultStore, damage: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    store.write("runs/r1", value)
    raw = store.storage.read("runs/r1")
    damaged = DAMAGES[damage](raw)
    assert damaged != raw
    store.storage.write("runs/r1", damaged)

    with pytest.raises(RecordCorruptError, match="runs/r1"):
        store.read("runs/r1")
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup("runs/r1") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "resultkit"]
    assert len(warnings) == 1
    assert "runs/r1" in warnings[0].getMessage() and "miss" in warnings[0].getMessage()


@pytest.mark.parametrize("damage", ["header-bit-flipped", "garbage", "empty", "truncated-inside-header"])
def test_a_record_with_a_damaged_header_does_not_exist(store: ResultStore, damage: str) -> None:
    store.write("k", SMALL)
    store.storage.write("k", DAMAGES[damage](store.storage.read("k")))
    assert not store.exists("k")
    assert "k" not in list(store.list())
    assert "k" in list(store.list(include_expired=True))
    with pytest.raises(RecordCorruptError):
        store.metadata("k")


def test_a_corrupt_record_is_replaced_by_the_next_write(store: ResultStore) -> None:
    store.write("k", SMALL)
    store.storage.write("k", DAMAGES["payload-bit-flipped"](store.storage.read("k")))
    assert store.lookup("k") is None
    store.write("k", SMALL)
    hit = store.lookup("k")
    assert hit is not None and hit.result == SMALL


def test_checksum_mismatch_names_both_hashes(store: ResultStore) -> None:
    store.write("k", SMALL)
    raw = store.storage.read("k")
    store.storage.write("k", flip_bit(raw, len(raw) - 2))
    with pytest.raises(RecordCorruptError, match=r"stored xxh3_128:[0-9a-f]{32}, computed xxh3_128:"):
        store.read("k")
