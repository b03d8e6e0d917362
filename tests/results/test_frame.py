"""The record frame (header line, newline, payload): the one reader every caller uses."""

from __future__ import annotations

import pytest

from resultkit.errors import RecordCorruptError
from resultkit.results.record import MAX_HEADER_SIZE, read_header, split_frame
from resultkit.storage import MemoryStorage


def test_split_frame_gives_the_header_line_and_the_payload_offset() -> None:
    assert split_frame(b'{"h":1}\npayload', "k") == (b'{"h":1}', 8)
    assert split_frame(bytearray(b'{}\nrest'), "k", end=3) == (b"{}", 3)


@pytest.mark.parametrize(("head", "end", "message"), [
    (b"", None, "record 'k' is empty"),
    (b"no newline", None, "record 'k' has no header line \\(truncated or not a record\\)"),
    (b"abc\ndef", 3, "has no header line"),  # the newline lies past what was read
])
def test_split_frame_refuses_a_head_without_a_header_line(head: bytes, end: int | None, message: str) -> None:
    with pytest.raises(RecordCorruptError, match=message):
        split_frame(head, "k", end)


def test_read_header_grows_the_read_until_the_newline() -> None:
    storage = MemoryStorage()
    record = b"x" * 10_000 + b"\npayload"
    storage.write("long", record)
    asked: list[int] = []

    def read_head(key: str, size: int) -> bytes:
        asked.append(size)
        return storage.read_head(key, size)

    head, offset, requested = read_header(read_head, "long", 4096)
    assert head == record and offset == 10_001 and requested == 65536
    assert asked == [4096, 65536]


def test_read_header_uses_a_first_read_already_made() -> None:
    head, offset, requested = read_header(lambda key, size: pytest.fail("no read"), "k", 64, b"h\np")
    assert (head, offset, requested) == (b"h\np", 2, 64)


def test_read_header_stops_at_max_header_size() -> None:
    storage = MemoryStorage()
    storage.write("huge", b"x" * (MAX_HEADER_SIZE + 10))
    with pytest.raises(RecordCorruptError, match=f"no header line in its first {MAX_HEADER_SIZE} bytes"):
        read_header(storage.read_head, "huge", 4096)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "'short' is empty"), (b"x" * 5000, "has no header line \\(truncated")])
def test_read_header_names_empty_and_truncated_records(content: bytes, message: str) -> None:
    storage = MemoryStorage()
    storage.write("short", content)
    with pytest.raises(RecordCorruptError, match=message):
        read_header(storage.read_head, "short", 4096)
