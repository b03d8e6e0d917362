"""The record header: encoding, decoding and what a reader refuses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from resultkit.errors import RecordCorruptError, ResultkitError
from resultkit.results import ResultLiteral, ResultRecord, ResultRecordMetadata
from resultkit.results.record import (
    RECORD_FORMAT,
    RECORD_VERSION,
    decode_header,
    encode_header,
    format_timestamp,
    parse_timestamp,
)

from .conftest import seal_header

CREATED = datetime(2026, 11, 22, 16, 34, 16, 123456, tzinfo=timezone.utc)


def make_metadata(**overrides: Any) -> ResultRecordMetadata:
    fields: dict[str, Any] = dict(
        storage_key="task/abc",
        serializer={"type": "pickle", "picklelib": "cloudpickle", "protocol": 5},
        created=CREATED,
        payload_size=12,
        payload_hash="xxh3_128:00112233445566778899aabbccddeeff",
        resultkit_version="0.1.0",
        extra={"task_name": "mod.train", "key_parts": {"inputs": "ab12"}},
    )
    fields.update(overrides)
    return ResultRecordMetadata(**fields)


def header_of(**metadata_overrides: Any) -> dict[str, Any]:
    header: dict[str, Any] = orjson.loads(encode_header(make_metadata()))
    header["metadata"].update(metadata_overrides)
    return header


def test_header_is_one_compact_json_line_ending_in_newline() -> None:
    line = encode_header(make_metadata())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b": " not in line and b", " not in line  # compact
    header = orjson.loads(line)
    assert header["format"] == RECORD_FORMAT == "resultkit-record"
    assert header["version"] == 1 and RECORD_VERSION == 2  # version 2 only for group commits
    assert header["metadata"]["serializer"] == {"type": "pickle", "picklelib": "cloudpickle", "protocol": 5}
    assert header["metadata"]["created"] == "2026-11-22T16:34:16.123456Z"
    assert header["metadata"]["expiration"] is None


def test_header_round_trips_every_field() -> None:
    metadata = make_metadata(
        expiration=CREATED + timedelta(days=1),
        is_literal=True,
        literal=False,
        payload_size=0,
        signature="hmac-sha256:" + "ab" * 32,
    )
    _, decoded = decode_header(encode_header(metadata))
    assert decoded == metadata
    assert decoded.created.tzinfo is not None and decoded.created.utcoffset() == timedelta(0)


def test_newlines_inside_values_are_escaped_so_the_header_stays_one_line() -> None:
    line = encode_header(make_metadata(extra={"note": "two\nlines"}))
    assert line.count(b"\n") == 1
    assert decode_header(line)[1].extra == {"note": "two\nlines"}


def test_timestamps_are_utc_with_z_and_parse_other_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2026, 1, 1, 12, 0, tzinfo=plus_two)
    assert format_timestamp(moment) == "2026-01-01T10:00:00.000000Z"
    assert parse_timestamp("2026-01-01T12:00:00+02:00") == moment
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp("2026-01-01T12:00:00")


def test_expiry_is_absolute() -> None:
    now = datetime.now(timezone.utc)
    assert not make_metadata().is_expired()
    assert make_metadata(expiration=now - timedelta(seconds=1)).is_expired()
    assert not make_metadata(expiration=now + timedelta(hours=1)).is_expired()
    assert make_metadata(expiration=now).is_expired(now=now + timedelta(microseconds=1))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"format": "other", "version": 1, "metadata": {}}', "not a resultkit record"),
        (b'{"version": 1, "metadata": {}}', "format None"),
        (b'{"format": "resultkit-record", "version": "1", "metadata": {}}', "invalid version"),
        (b'{"format": "resultkit-record", "version": 0, "metadata": {}}', "invalid version"),
        (b'{"format": "resultkit-record", "version": 1}', "no 'metadata'"),
        (b'{"format": "resultkit-record", "version": 1, "metadata": {}}', "does not end with its 'header_hash'"),
    ],
)
def test_unreadable_headers_are_corrupt(line: bytes, reason: str) -> None:
    with pytest.raises(RecordCorruptError, match=reason):
        decode_header(line)


def test_missing_fields_are_corrupt() -> None:
    header = header_of()
    del header["metadata"]["payload_hash"]
    with pytest.raises(RecordCorruptError, match=r"lacks the field\(s\) \['payload_hash'\]"):
        decode_header(seal_header(header))


def test_every_single_bit_flip_in_a_header_is_detected() -> None:
    line = encode_header(make_metadata(expiration=CREATED + timedelta(days=1)))[:-1]
    for index in range(len(line)):
        for bit in range(8):
            damaged = bytearray(line)
            damaged[index] ^= 1 << bit
            with pytest.raises(RecordCorruptError):
                decode_header(bytes(damaged))


def test_a_newer_version_asks_to_upgrade() -> None:
    header = header_of()
    header["version"] = RECORD_VERSION + 1
    with pytest.raises(RecordCorruptError, match="upgrade resultkit"):
        decode_header(seal_header(header))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payload_size", "12"),
        ("payload_size", True),
        ("payload_size", -1),
        ("created", "yesterday"),
        ("created", "2026-11-22T16:34:16"),
        ("expiration", 5),
        ("serializer", "pickle"),
        ("literal", 3),
        ("extra", [1]),
        ("signature", 7),
    ],
)
def test_mistyped_fields_are_corrupt(field: str, value: Any) -> None:
    with pytest.raises(RecordCorruptError, match=r"invalid field|negative"):
        decode_header(seal_header(header_of(**{field: value})))


def test_unknown_serializer_type_is_not_a_parse_error() -> None:
    _, metadata = decode_header(seal_header(header_of(serializer={"type": "no-such-serializer"})))
    assert metadata.serializer == {"type": "no-such-serializer"}


def test_unknown_metadata_fields_are_ignored_for_forward_compatibility() -> None:
    _, metadata = decode_header(seal_header(header_of(future_field={"a": 1})))
    assert metadata.storage_key == "task/abc"


def test_extra_that_is_not_json_safe_is_refused_with_a_hint() -> None:
    with pytest.raises(ResultkitError, match="JSON-safe"):
        encode_header(make_metadata(extra={"obj": object()}))


def test_literals_are_exactly_true_false_none() -> None:
    assert all(ResultLiteral.supports(v) for v in (True, False, None))
    assert not any(ResultLiteral.supports(v) for v in (0, 1, 0.0, "", [], "None"))
    assert ResultLiteral(True).value is True
    with pytest.raises(ResultkitError, match="only True, False or None"):
        ResultLiteral(1)  # type: ignore[arg-type]


def test_record_without_storage_cannot_make_a_reference() -> None:
    record = ResultRecord(make_metadata(), 42)
    with pytest.raises(ResultkitError, match="does not know its storage"):
        record.reference()


def test_the_documented_examples_are_real_intact_headers() -> None:
    from pathlib import Path

    from resultkit.results.signing import verify_header

    doc = Path(__file__).resolve().parents[2] / "docs" / "record-format.md"
    lines = [line for line in doc.read_text().splitlines() if line.startswith('{"format":"resultkit-record"')]
    assert len(lines) == 5  # pickle, json, compressed, literal, signed
    kinds = set()
    for line in lines:
        header, metadata = decode_header(line.encode())
        kinds.add(metadata.serializer["type"])
        if metadata.signature is not None:
            verify_header(header, b"team-secret", metadata.storage_key)
            kinds.add("signed")
        if metadata.is_literal:
            kinds.add("literal")
    assert kinds == {"pickle", "json", "compressed", "literal", "signed"}
