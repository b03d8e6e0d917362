"""Signed records: a store with a key refuses unsigned or wrongly signed records before unpickling."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

import blake3
import orjson
import pytest

from resultkit.errors import RecordCorruptError
from resultkit.results import ResultStore
from resultkit.serializers import PickleSerializer
from resultkit.storage import Storage

from .conftest import rewrite_header, seal_header


class CreatesMarker:
    """Unpickling this creates a file: the visible trace of a payload having been run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-was-unpickled"


def split(storage: Storage, key: str) -> tuple[dict[str, Any], bytes]:
    line, _, payload = storage.read(key).partition(b"\n")
    return orjson.loads(line), payload


def test_the_marker_payload_runs_when_unpickled(storage: Storage, marker: Path) -> None:
    """Control: without a key the payload is unpickled, so the marker would reveal it."""
    ResultStore(storage).write("evil", CreatesMarker(marker))
    assert not marker.exists()  # pickling does not run it
    ResultStore(storage).read("evil")
    assert marker.exists()


def test_unsigned_record_is_refused_before_unpickling(
    storage: Storage, marker: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ResultStore(storage).write("evil", CreatesMarker(marker))
    signing = ResultStore(storage, signing_key="team-secret")
    with pytest.raises(RecordCorruptError, match="'evil' is unsigned"):
        signing.read("evil")
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert signing.lookup("evil") is None
    assert "unsigned" in caplog.text
    assert not signing.exists("evil")
    assert not marker.exists()


def test_record_signed_with_another_key_is_refused_before_unpickling(
    storage: Storage, marker: Path
) -> None:
    ResultStore(storage, signing_key="attacker-key").write("evil", CreatesMarker(marker))
    signing = ResultStore(storage, signing_key="team-secret")
    with pytest.raises(RecordCorruptError, match="invalid signature"):
        signing.read("evil")
    assert signing.lookup("evil") is None
    assert not marker.exists()


def test_swapped_payload_is_refused_before_unpickling(storage: Storage, marker: Path) -> None:
    signing = ResultStore(storage, signing_key="team-secret")
    signing.write("model", {"weights": [1, 2, 3]})
    header, _ = split(storage, "model")
    evil = PickleSerializer().dumps(CreatesMarker(marker))

    # 1. Payload replaced, header untouched: size/blake3 mismatch.
    storage.write("model", seal_header(header) + evil)
    with pytest.raises(RecordCorruptError, match="model"):
        signing.read("model")
    # 2. Header updated to match the new payload: the signature no longer matches.
    header["metadata"]["payload_size"] = len(evil)
    header["metadata"]["payload_hash"] = "blake3:" + blake3.blake3(evil).hexdigest()
    storage.write("model", seal_header(header) + evil)
    with pytest.raises(RecordCorruptError, match="invalid signature"):
        signing.read("model")
    assert not marker.exists()


def test_tampered_header_fails_the_signature(storage: Storage) -> None:
    signing = ResultStore(storage, signing_key="team-secret")
    signing.write("k", [1, 2], expiration=None)
    rewrite_header(storage, "k", extra={"task_name": "forged"})
    with pytest.raises(RecordCorruptError, match="invalid signature"):
        signing.read("k")


def test_signed_record_copied_to_another_key_is_refused(storage: Storage) -> None:
    signing = ResultStore(storage, signing_key="team-secret")
    signing.write("approved", "ship it")
    storage.write("pending", storage.read("approved"))
    with pytest.raises(RecordCorruptError, match="names key 'approved' in its header"):
        signing.read("pending")


def test_signing_key_from_the_environment(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTKIT_SIGNING_KEY", "from-env")
    store = ResultStore(storage)
    assert store.signing
    record = store.write("k", {"a": 1})
    assert record.metadata.payload_hash.startswith("blake3:")
    assert record.metadata.signature is not None and record.metadata.signature.startswith("hmac-sha256:")
    assert ResultStore(storage, signing_key="from-env").read("k").result == {"a": 1}
    with pytest.raises(RecordCorruptError, match="invalid signature"):
        ResultStore(storage, signing_key="other").read("k")
    monkeypatch.delenv("RESULTKIT_SIGNING_KEY")
    unsigned_reader = ResultStore(storage)
    assert not unsigned_reader.signing
    assert unsigned_reader.read("k").result == {"a": 1}  # a reader without a key still loads it


def test_signature_is_hmac_sha256_over_the_documented_canonical_bytes(storage: Storage) -> None:
    ResultStore(storage, signing_key=b"k").write("k", 1234)
    header, _ = split(storage, "k")
    signature = header["metadata"].pop("signature")
    del header["header_hash"]
    canonical = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
    assert signature == "hmac-sha256:" + hmac.new(b"k", canonical, hashlib.sha256).hexdigest()


def test_signed_literals_are_verified_too(storage: Storage) -> None:
    ResultStore(storage).write("flag", True)
    signing = ResultStore(storage, signing_key="team-secret")
    with pytest.raises(RecordCorruptError, match="unsigned"):
        signing.read("flag")
    signing.write("flag", True)
    assert signing.read("flag").result is True
