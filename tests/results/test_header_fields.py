"""Header fields declared once (``metadata=wire(...)``): what the derived codec writes and reads."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from resultkit.errors import RecordCorruptError
from resultkit.results import ResultRecordMetadata
from resultkit.results._fields import HeaderCodec, wire
from resultkit.results.record import decode_header, encode_header, header_dict

CREATED = datetime(2026, 11, 22, 16, 34, 16, 123456, tzinfo=timezone.utc)
REQUIRED = {"storage_key": "k", "serializer": {"type": "pickle"}, "created": "2026-11-22T16:34:16.123456Z",
            "payload_size": 3, "payload_hash": "xxh3_128:00"}


def metadata(**overrides: object) -> ResultRecordMetadata:
    return ResultRecordMetadata("k", {"type": "pickle"}, CREATED, 3, "xxh3_128:00", **overrides)  # type: ignore[arg-type]


def test_members_are_written_in_declaration_order_and_commit_only_when_set() -> None:
    names = [field.name for field in dataclasses.fields(ResultRecordMetadata)]
    assert list(metadata().to_dict()) == [name for name in names if name != "commit"]
    assert list(metadata(commit="c1").to_dict()) == names


def test_the_header_version_is_the_newest_field_a_record_sets() -> None:
    assert header_dict(metadata())["version"] == 1
    assert header_dict(metadata(commit="c1"))["version"] == 2
    for commit in (None, "c1"):
        assert decode_header(encode_header(metadata(commit=commit)))[1] == metadata(commit=commit)


def test_absent_optional_members_read_as_declared() -> None:
    first, second = (ResultRecordMetadata.from_dict(dict(REQUIRED)) for _ in range(2))
    assert (first.expiration, first.python_version, first.is_literal, first.commit) == (None, "", False, None)
    assert first.extra == {} and first.extra is not second.extra  # a fresh dict per record


@pytest.mark.parametrize(("member", "value", "message"), [
    ("is_literal", "yes", "is_literal must be true or false, got str 'yes'"),
    ("payload_size", True, "payload_size must be an integer, got bool True"),
    ("storage_key", None, "storage_key must be a string, got NoneType None"),
    ("created", "noon", "created: Invalid isoformat string"),
    ("payload_size", -1, "payload_size -1 is negative"),
])
def test_a_refused_member_is_named(member: str, value: object, message: str) -> None:
    with pytest.raises(RecordCorruptError, match=message):
        ResultRecordMetadata.from_dict({**REQUIRED, member: value})


def test_fields_with_a_default_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ResultRecordMetadata("k", {}, CREATED, 3, "xxh3_128:00", None)  # type: ignore[misc]


@dataclasses.dataclass
class _Later(ResultRecordMetadata):
    """A metadata with a member a later header version adds."""

    region: str | None = dataclasses.field(default=None, kw_only=True, metadata=wire(str, since=3,
                                                                                   json_name="rg"))


def test_a_later_field_is_declared_once_and_the_codec_follows() -> None:
    codec = HeaderCodec(_Later)
    plain = _Later("k", {"type": "pickle"}, CREATED, 3, "xxh3_128:00")
    tagged = dataclasses.replace(plain, region="eu", commit="c1")
    assert "rg" not in codec.to_dict(plain) and codec.version(plain) == 1
    assert codec.to_dict(tagged)["rg"] == "eu" and codec.version(tagged) == 3
    assert codec.from_dict_fast(codec.to_dict(tagged)) == tagged
    assert _Later.from_dict(codec.to_dict(tagged)) == tagged
    assert type(codec.from_dict({**codec.to_dict(tagged), "extra": None})) is _Later
