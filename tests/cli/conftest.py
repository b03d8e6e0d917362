"""Fixtures for the CLI tests: a local store holding every kind of record."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from resultkit.cli import main
from resultkit.results.record import decode_header, encode_header
from resultkit.results.store import ResultStore
from resultkit.storage.base import Storage


@dataclass
class CliRun:
    """What one in-process ``main([...])`` call did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return orjson.loads(self.out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliRun]:
    """Run the CLI in-process with a non-terminal stdin (``stdin=`` text), capturing its output."""

    def invoke(*argv: str, stdin: str = "") -> CliRun:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return invoke


def flip_byte(path: Path, offset_from_end: int = 1) -> None:
    """Corrupt a record on disk by inverting one payload byte."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def backdate(storage: Storage, key: str, created: datetime) -> None:
    """Rewrite the record at ``key`` as if it had been created at ``created``."""
    raw = storage.read(key)
    end = raw.index(b"\n")
    _, metadata = decode_header(raw[:end])
    metadata.created = created
    storage.write(key, [encode_header(metadata), raw[end + 1 :]])


@dataclass
class Fixture:
    root: Path
    store: ResultStore


@pytest.fixture
def records(tmp_path: Path) -> Fixture:
    """A LocalStorage with live, expired, never-expiring, literal, JSON and corrupt records.

    Keys: ``pickle/one`` (no expiry), ``pickle/old`` (no expiry, created 3 days ago),
    ``pickle/expired``, ``json/live`` (expires in a day), ``literal/none``,
    ``bad/flipped`` (payload byte flipped on disk).
    """
    root = tmp_path / "store"
    store = ResultStore(root)
    store.write("pickle/one", {"a": 1})
    store.write("pickle/old", [1, 2, 3])
    backdate(store.storage, "pickle/old", datetime.now(timezone.utc) - timedelta(days=3))
    store.write("pickle/expired", "stale", expiration=timedelta(seconds=-60))
    ResultStore(root, serializer="json").write("json/live", {"b": [1, 2]}, expiration=timedelta(days=1))
    store.write("literal/none", None)
    store.write("bad/flipped", b"x" * 1000)
    flip_byte(root / "bad" / "flipped", 10)
    return Fixture(root, store)


ALL_KEYS = ["bad/flipped", "json/live", "literal/none", "pickle/expired", "pickle/old", "pickle/one"]
