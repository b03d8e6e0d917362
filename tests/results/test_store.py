"""ResultStore: write, read, lookup, exists, metadata, delete, list, expiry, literals."""

from __future__ import annotations

import logging
import pickle
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import pytest

from resultkit.errors import (
    ConfigurationError,
    RecordNotFound,
    SerializationError,
    StorageError,
)
from resultkit.results import ResultStore
from resultkit.serializers import PickleSerializer
from resultkit.storage import LocalStorage, MemoryStorage, Storage

from .conftest import CountingLocalStorage, rewrite_header

VALUE = {"name": "train", "scores": [0.5, 0.25], "ok": True}


def test_write_then_read_lookup_exists_metadata(store: ResultStore) -> None:
    before = datetime.now(timezone.utc)
    written = store.write("tasks/train/abc", VALUE)
    assert written.result == VALUE
    read = store.read("tasks/train/abc")
    assert read.result == VALUE
    assert read.metadata == written.metadata
    hit = store.lookup("tasks/train/abc")
    assert hit is not None and hit.result == VALUE
    assert store.exists("tasks/train/abc")
    metadata = store.metadata("tasks/train/abc")
    assert metadata.storage_key == "tasks/train/abc"
    assert metadata.serializer == PickleSerializer().to_config()
    assert metadata.payload_hash.startswith("xxh3_128:")
    assert metadata.payload_size > 0
    assert before <= metadata.created <= datetime.now(timezone.utc)
    assert metadata.python_version == "{}.{}.{}".format(*sys.version_info[:3])
    assert metadata.resultkit_version
    assert metadata.expiration is None and metadata.signature is None


def test_missing_key_is_not_found_everywhere(store: ResultStore) -> None:
    with pytest.raises(RecordNotFound, match="no record at key 'nope'"):
        store.read("nope")
    with pytest.raises(KeyError):  # RecordNotFound is a KeyError too
        store.metadata("nope")
    assert store.lookup("nope") is None
    assert not store.exists("nope")
    assert store.delete("nope") is False


def test_overwrite_replaces_the_record(store: ResultStore) -> None:
    store.write("k", [1])
    store.write("k", [2, 2])
    assert store.read("k").result == [2, 2]


def test_delete_and_list(store: ResultStore) -> None:
    for key in ("a/1", "a/2", "b/1"):
        store.write(key, key)
    assert sorted(store.list()) == ["a/1", "a/2", "b/1"]
    assert sorted(store.list("a/")) == ["a/1", "a/2"]
    assert store.delete("a/1") is True
    assert not store.exists("a/1")
    assert store.lookup("a/1") is None
    assert sorted(store.list()) == ["a/2", "b/1"]


def test_expired_records_are_missing_everywhere(store: ResultStore) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    store.write("old", VALUE, expiration=past)
    store.write("fresh", VALUE, expiration=timedelta(hours=1))
    assert not store.exists("old")
    assert store.lookup("old") is None
    with pytest.raises(RecordNotFound, match="expired"):
        store.read("old")
    with pytest.raises(RecordNotFound, match="expired"):
        store.metadata("old")
    assert list(store.list()) == ["fresh"]
    assert sorted(store.list(include_expired=True)) == ["fresh", "old"]
    fresh = store.metadata("fresh")
    assert fresh.expiration is not None
    assert timedelta(minutes=59) < fresh.expiration - fresh.created <= timedelta(hours=1)


def test_expiration_is_stored_in_utc(store: ResultStore) -> None:
    plus_five = timezone(timedelta(hours=5))
    moment = datetime(2100, 1, 1, 5, 0, tzinfo=plus_five)
    store.write("k", 1, expiration=moment)
    expiration = store.metadata("k").expiration
    assert expiration == moment and expiration is not None
    assert expiration.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("expiration", "message"),
    [
        (datetime(2100, 1, 1), "naive datetime"),
        (3600, "datetime, a timedelta or None"),
        ("tomorrow", "datetime, a timedelta or None"),
    ],
)
def test_bad_expiration_is_refused(store: ResultStore, expiration: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        store.write("k", 1, expiration=expiration)  # type: ignore[arg-type]
    assert not store.exists("k")


@pytest.mark.parametrize("value", [True, False, None])
def test_literals_live_in_the_header(store: ResultStore, value: bool | None) -> None:
    record = store.write("lit", value)
    assert record.metadata.is_literal and record.metadata.payload_size == 0
    raw = store.storage.read("lit")
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1  # header only, empty payload
    assert orjson.loads(raw)["metadata"]["literal"] is value
    assert store.read("lit").result is value
    hit = store.lookup("lit")
    assert hit is not None and hit.result is value


def test_reading_a_literal_needs_no_serializer(store: ResultStore) -> None:
    store.write("lit", False)
    # A serializer this process cannot build: a payload record would fail to load.
    rewrite_header(store.storage, "lit", serializer={"type": "not-installed-anywhere"})
    assert store.read("lit").result is False


def test_zero_and_one_are_not_literals(store: ResultStore) -> None:
    for value in (0, 1, 0.0, ""):
        record = store.write("v", value)
        assert not record.metadata.is_literal
        result = store.read("v").result
        assert result == value and type(result) is type(value)


def test_extra_is_kept_in_the_header(store: ResultStore) -> None:
    extra = {"task_name": "pkg.train", "key_parts": {"inputs": "ab12", "source": "cd34"}}
    store.write("k", 1, extra=extra)
    assert store.metadata("k").extra == extra
    with pytest.raises(ConfigurationError, match="extra must be a dict"):
        store.write("k2", 1, extra=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="JSON-safe"):
        store.write("k3", 1, extra={"client": object()})
    assert not store.exists("k2") and not store.exists("k3")


def test_records_written_by_another_serializer_load_from_their_header(storage: Storage) -> None:
    ResultStore(storage, serializer=PickleSerializer(picklelib="pickle", protocol=4)).write("k", VALUE)
    reader = ResultStore(storage)  # cloudpickle, protocol 5
    record = reader.read("k")
    assert record.result == VALUE
    assert record.metadata.serializer == {"type": "pickle", "picklelib": "pickle", "protocol": 4}


def test_unknown_serializer_type_errors_at_load(
    store: ResultStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.write("k", VALUE)
    rewrite_header(store.storage, "k", serializer={"type": "not-installed-anywhere"})
    assert store.exists("k")  # the header itself is fine
    with pytest.raises(SerializationError, match="not-installed-anywhere"):
        store.read("k")
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup("k") is None
    assert "not-installed-anywhere" in caplog.text


@pytest.mark.parametrize("target_size", [65_535, 65_536, 65_537, 200_000])
def test_records_around_the_first_read_size_load_whole(store: ResultStore, target_size: int) -> None:
    """The small-read fast path and the streamed path meet at 64 KiB: no byte may be lost."""
    length = target_size - 500
    for _ in range(4):  # the header's digits can shift the total by a byte or two
        store.write("k", b"x" * length)
        total = len(store.storage.read("k"))
        if total == target_size:
            break
        length += target_size - total
    assert total == target_size
    assert store.read("k").result == b"x" * length
    hit = store.lookup("k")
    assert hit is not None and hit.result == b"x" * length


def test_large_array_round_trips_writable(store: ResultStore) -> None:
    array = np.arange(1_000_000, dtype=np.float64)
    store.write("big", array)
    loaded = store.read("big").result
    assert isinstance(loaded, np.ndarray) and loaded.dtype == np.float64
    assert np.array_equal(loaded, array)
    assert loaded.flags.writeable  # read into one bytearray, not an immutable bytes copy


def test_hit_on_a_small_record_reads_storage_once(counting_storage: CountingLocalStorage) -> None:
    store = ResultStore(counting_storage)
    store.write("k", VALUE)
    counting_storage.calls.clear()
    assert store.lookup("k") is not None
    assert counting_storage.calls == [("read_head", 65536)]
    counting_storage.calls.clear()
    assert store.lookup("missing") is None
    assert counting_storage.calls == [("read_head", 65536)]


def test_exists_and_metadata_read_only_a_small_header(counting_storage: CountingLocalStorage) -> None:
    store = ResultStore(counting_storage)
    store.write("big", np.zeros(2_000_000))
    counting_storage.calls.clear()
    assert store.exists("big")
    assert store.metadata("big").payload_size > 16_000_000
    assert counting_storage.calls == [("read_head", 4096), ("read_head", 4096)]


def test_large_record_streams_into_one_buffer(tmp_path: Path) -> None:
    storage = CountingLocalStorage(tmp_path / "counted", mmap=False)
    store = ResultStore(storage)
    store.write("big", np.ones(1_000_000))
    storage.calls.clear()
    assert np.array_equal(store.read("big").result, np.ones(1_000_000))
    assert storage.calls == [("read_head", 65536), ("map_read", storage.path_of("big").stat().st_size),
                             ("open_read", None)]


def test_large_local_record_is_mapped_not_streamed(counting_storage: CountingLocalStorage) -> None:
    store = ResultStore(counting_storage)
    store.write("big", np.ones(1_000_000))
    counting_storage.calls.clear()
    assert np.array_equal(store.read("big").result, np.ones(1_000_000))
    assert counting_storage.calls == [("read_head", 65536),
                                      ("map_read", counting_storage.path_of("big").stat().st_size)]


def test_write_streams_header_and_payload_chunks_without_joining(
    counting_storage: CountingLocalStorage,
) -> None:
    store = ResultStore(counting_storage)
    array = np.arange(1_000_000, dtype=np.float64)
    store.write("big", array)
    chunks = counting_storage.chunks
    assert len(chunks) >= 3  # header, pickle stream, the array's own buffer
    assert bytes(chunks[0]).startswith(b'{"format":"resultkit-record"') and bytes(chunks[0]).endswith(b"\n")
    assert any(np.shares_memory(np.frombuffer(chunk, dtype=np.uint8), array) for chunk in chunks[1:])


def test_records_embed_no_absolute_path(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "deep" / "records")
    ResultStore(storage).write("k", VALUE)
    raw = storage.read("k")
    assert str(tmp_path).encode() not in raw
    assert b"/deep/records" not in raw


def test_default_storage_is_resultkit_home(resultkit_home: Path) -> None:
    store = ResultStore()
    assert isinstance(store.storage, LocalStorage)
    assert store.storage.basepath == resultkit_home / "storage"
    store.write("k", 1)
    assert (resultkit_home / "storage" / "k").is_file()


def test_default_storage_and_serializer_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("RESULTKIT_DEFAULT_SERIALIZER", "nonsense")
    with pytest.raises(ConfigurationError, match="unknown serializer name 'nonsense'"):
        ResultStore()
    monkeypatch.setenv("RESULTKIT_DEFAULT_SERIALIZER", "pickle")
    store = ResultStore()
    store.write("k", 1)
    assert (tmp_path / "elsewhere" / "k").is_file()


def test_storage_accepts_a_path(tmp_path: Path) -> None:
    ResultStore(str(tmp_path / "p")).write("k", 1)
    ResultStore(tmp_path / "q").write("k", 2)
    assert ResultStore(tmp_path / "p").read("k").result == 1
    assert ResultStore(str(tmp_path / "q")).read("k").result == 2


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "", ".rk-tmp-x"])
def test_bad_keys_raise_storage_error(store: ResultStore, key: str) -> None:
    with pytest.raises(StorageError):
        store.write(key, 1)
    with pytest.raises(StorageError):
        store.read(key)
    with pytest.raises(StorageError):
        store.lookup(key)  # bad input is an error, not a quiet miss
    with pytest.raises(StorageError):
        store.exists(key)


def test_bad_constructor_arguments_name_the_problem() -> None:
    with pytest.raises(ConfigurationError, match="result_serializer"):
        ResultStore(MemoryStorage(), serializer=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="signing_key must be str or bytes"):
        ResultStore(MemoryStorage(), signing_key=123)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="signing_key is empty"):
        ResultStore(MemoryStorage(), signing_key="")


def test_storage_fault_on_lookup_is_a_miss_with_a_warning(
    local_storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    store = ResultStore(local_storage)
    store.write("present", 1)
    too_long = "x" * 300  # the file system refuses the name: a real OSError from the backend
    with pytest.raises(StorageError):
        store.read(too_long)
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup(too_long) is None
    assert any(r.levelno == logging.WARNING and too_long in r.getMessage() for r in caplog.records)


def test_store_pickles_and_keeps_working(local_storage: LocalStorage) -> None:
    store = ResultStore(local_storage, signing_key="k3y")
    store.write("k", VALUE)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.signing
    assert clone.read("k").result == VALUE
    clone.write("k2", [1])
    assert store.read("k2").result == [1]


def test_json_records_are_plain_text_end_to_end(local_storage: LocalStorage) -> None:
    store = ResultStore(local_storage, serializer="json")
    when = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    store.write("k", {"when": when, "values": (1, 2)})
    raw = local_storage.path_of("k").read_bytes()
    text = raw.decode("utf-8")  # no binary anywhere
    header_line, payload = text.split("\n", 1)
    assert orjson.loads(header_line)["metadata"]["serializer"]["type"] == "json"
    orjson.loads(payload)
    assert ResultStore(local_storage).read("k").result == {"when": when, "values": (1, 2)}


def test_compressed_records_round_trip_and_name_their_inner_serializer(storage: Storage) -> None:
    store = ResultStore(storage, serializer="compressed/pickle")
    array = np.zeros(500_000)  # compresses far below its 4 MB
    record = store.write("k", array)
    assert record.metadata.serializer["type"] == "compressed"
    assert record.metadata.serializer["serializer"]["type"] == "pickle"
    assert record.metadata.payload_size < 100_000
    assert np.array_equal(ResultStore(storage).read("k").result, array)


def test_readers_never_see_a_mix_of_two_writes(local_storage: LocalStorage) -> None:
    """A record replaced between the header read and the payload stream is read again."""
    import threading

    store = ResultStore(local_storage)
    values = [np.full(100_000, i, dtype=np.float64) for i in range(2)]  # 800 KB: streamed path
    store.write("k", values[0])
    stop = threading.Event()

    def overwrite() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            store.write("k", values[i % 2])

    writer = threading.Thread(target=overwrite)
    writer.start()
    try:
        for _ in range(200):
            array = ResultStore(local_storage).read("k").result
            assert array[0] in (0.0, 1.0) and np.all(array == array[0])
    finally:
        stop.set()
        writer.join()


@pytest.mark.parametrize("serializer", ["pickle", "json", "compressed/pickle"])
def test_warm_up_touches_no_storage_and_later_reads_are_unchanged(tmp_path: Path, serializer: str) -> None:
    store = ResultStore(LocalStorage(tmp_path / "records"), serializer)
    store.warm_up()
    assert not (tmp_path / "records").exists()
    store.write("k", {"a": [1, 2]})
    store.warm_up()
    assert list(store.list(include_expired=True)) == ["k"]
    assert store.read("k").result == {"a": [1, 2]}
