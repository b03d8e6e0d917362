"""``ResultStore``: write, read and look up result records in a storage.

A cache hit (:meth:`ResultStore.lookup`) costs one small storage read for records
up to 64 KiB; larger records add one streamed read into a single preallocated
buffer, so the payload is never copied again before it is deserialized.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from .._env import env_setting, resultkit_home
from .._types import Buffer, as_byte_view
from ..errors import (
    RecordCorruptError,
    RecordNotFound,
    ResultkitError,
    SerializationError,
    StorageError,
)
from ..serializers.base import Serializer, resolve_serializer
from ..storage.base import Storage, validate_key
from ._async import in_thread
from ._build import RESULTKIT_VERSION, build_record
from ._large_writes import write_large_record
from ._locks import StoreLocks
from ._prefect_calls import (
    MISSING,
    PrefectStoreCalls,
    check_store_options,
    chosen_storage,
    chosen_value,
    default_storage_key,
)
from ._streams import MAP_FROM, RecordReplaced, read_payload
from .checksum import BLAKE3, XXH3_128, checksum, verify_checksum
from .journal import commit_finished
from .record import (
    ResultRecord,
    ResultRecordMetadata,
    decode_header,
    encode_header,
    read_header,
)
from .reference import ResultReference
from .signing import resolve_signing_key, verify_header

__all__ = ["ResultStore", "key_mismatch", "resolve_storage_value"]

logger = logging.getLogger("resultkit")

# The buffer size warm_up() pre-faults: local storage's first read (Storage.first_read_size).
_FIRST_READ_SIZE = 64 * 1024
# exists()/metadata() need only the header, which is usually a few hundred bytes.
_HEADER_READ_SIZE = 4096
# A record replaced between the header read and the payload stream is read again.
_REPLACED_RETRIES = 10

# Never read or written: a key segment starting ".rk-" is reserved, so no record has it.
_WARM_UP_KEY = ".rk-warm-up"


def key_mismatch(key: str, header_key: str) -> RecordCorruptError:
    """The error for a record read at ``key`` whose header names ``header_key``."""
    return RecordCorruptError(
        f"record at key {key!r} names key {header_key!r} in its header: it was copied or moved "
        f"there, so it does not answer for {key!r}; delete it, or move it back to {header_key!r}"
    )


def resolve_storage_value(storage: Storage | str | os.PathLike[str] | None) -> Storage:
    """A ``Storage`` from what users may pass, or the default (``$RESULTKIT_HOME/storage``)."""
    if storage is None:
        configured = env_setting("default_storage")
        if not configured:
            from ..storage.local import LocalStorage

            return LocalStorage(resultkit_home() / "storage")
        storage = configured
    if isinstance(storage, Storage):
        return storage
    from ..storage.resolve import resolve_storage  # fsspec-backed resolution loads on first use

    return resolve_storage(storage)


class ResultStore(StoreLocks, PrefectStoreCalls):
    """Result records in a storage: self-describing, checksummed, optionally signed.

    Prefect's keyword names are accepted too: ``ResultStore(result_storage=...,
    serializer=...)``, ``write(obj=..., key=...)``, ``read(key=...)``, and the
    coroutines ``aread``/``awrite``/``aexists``. Prefect's lock API (``acquire_lock``,
    ``release_lock``, ``is_locked``, ...) comes from
    :class:`~resultkit.results._locks.StoreLocks`.

    >>> from resultkit.storage import MemoryStorage
    >>> store = ResultStore(MemoryStorage())              # or a path, URL or block slug
    >>> store.write("answer", {"x": 42}).result
    {'x': 42}
    >>> store.lookup("answer").result
    {'x': 42}
    >>> store.lookup("question") is None
    True
    """

    def __init__(
        self,
        storage: Storage | str | os.PathLike[str] | None = None,
        serializer: Serializer | str | None = None,
        lock_manager: Any = None,
        signing_key: str | bytes | None = None,
        *,
        result_storage: Storage | str | os.PathLike[str] | None = None,
        metadata_storage: None = None,
        cache_result_in_memory: bool = True,
        storage_key_fn: Callable[[], str] = default_storage_key,
    ) -> None:
        storage = chosen_storage(storage, result_storage, metadata_storage)
        check_store_options(cache_result_in_memory, storage_key_fn)
        self.storage: Storage = resolve_storage_value(storage)
        self.serializer: Serializer = resolve_serializer(
            serializer, default=str(env_setting("default_serializer") or "pickle")
        )
        self.lock_manager = lock_manager
        #: Kept for Prefect's API; values are kept in memory by the task layer, not here.
        self.cache_result_in_memory = cache_result_in_memory
        #: Makes the key of a record written without one (``write(obj=value)``).
        self.storage_key_fn = storage_key_fn
        self._signing_key = resolve_signing_key(signing_key)
        self._init_caches()

    def _init_caches(self) -> None:
        self._serializer_config = self.serializer.to_config()
        self._serializers: dict[bytes, Serializer] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_serializers"]  # rebuilt on demand in the receiving process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._serializers = {}

    def __repr__(self) -> str:
        signed = ", signed" if self._signing_key else ""
        return f"ResultStore({self.storage!r}, {self.serializer!r}{signed})"

    @property
    def signing(self) -> bool:
        """Whether this store signs what it writes and refuses unsigned records."""
        return self._signing_key is not None

    # -- writing -------------------------------------------------------------------

    def write(
        self,
        key: str | None = None,
        value: Any = MISSING,
        expiration: datetime | timedelta | None = None,
        extra: Mapping[str, Any] | None = None,
        commit: str | None = None,
        holder: str | None = None,
        *,
        obj: Any = MISSING,
    ) -> ResultRecord[Any]:
        """Persist ``value`` at ``key`` atomically and return its record.

        ``expiration`` is an aware datetime or a timedelta from now; ``extra`` is a
        JSON-safe dict kept in the header (task name, cache key parts). ``commit`` is
        the id of the group commit writing it (transactions set it): the record is
        invisible to readers until that commit's journal is gone. Prefect's spelling
        ``write(obj=value, key=key)`` works too; without a key, one is made by
        ``storage_key_fn``. A value the serializer cannot write raises
        ``SerializationError`` with the value on ``err.value``, and nothing is written.
        A write is refused (``TransactionError``) while a holder other than ``holder``
        (default: this caller) holds ``key``'s lock.
        """
        value = chosen_value(value, obj)
        key = self._key_to_write(key)
        self._check_write(key, holder)
        metadata, views = self._build_record(key, value, expiration, extra, commit, checksum_later=True)
        if metadata.payload_size < MAP_FROM:
            # Header and payload chunks go to storage as they are: no join, no extra copy.
            self.storage.write(metadata.storage_key, [encode_header(metadata), *views])
        else:
            write_large_record(self.storage, metadata, views, self._signing_key)
        return ResultRecord(metadata, value, storage=self.storage)

    def _build_record(
        self, key: str, value: Any, expiration: datetime | timedelta | None, extra: Mapping[str, Any] | None,
        commit: str | None = None, checksum_later: bool = False,
    ) -> tuple[ResultRecordMetadata, list[memoryview]]:
        """The metadata of a record of ``value`` at ``key`` and its payload views (nothing written).

        ``checksum_later``: a payload of ``MAP_FROM`` bytes or more gets a placeholder hash
        (and no signature), sealed by ``write_large_record`` as the payload is written.
        """
        return build_record(self.serializer, self._serializer_config, self._signing_key, key, value,
                            expiration, extra, commit, large_from=MAP_FROM if checksum_later else None)

    # The async face (awrite, aread, aexists): each runs its sync method in a worker thread.
    awrite = in_thread(write)

    # -- reading -------------------------------------------------------------------

    def read(self, key: str, holder: str | None = None) -> ResultRecord[Any]:
        """The record at ``key``, verified; ``RecordNotFound`` if absent or expired.

        Raises ``RecordCorruptError`` for a damaged, truncated or wrongly signed
        record, and ``SerializationError`` if its payload cannot be deserialized.
        While a holder other than ``holder`` holds ``key``'s lock, waits for it first
        (at most ``lock_timeout`` seconds, then ``LockTimeout``).
        """
        self._wait_until_readable(key, holder)
        try:
            record = self._load(key)
        except FileNotFoundError:
            raise RecordNotFound(f"no record at key {key!r} in {self.storage.describe()}") from None
        if record is None:
            raise RecordNotFound(f"the record at key {key!r} in {self.storage.describe()} has expired "
                                 "or belongs to a commit that has not finished")
        return record

    aread = in_thread(read)

    def lookup(self, key: str) -> ResultRecord[Any] | None:
        """The record at ``key``, or None when it is absent, expired or unusable (with a warning).

        This is the cache-hit path: one storage read for records up to 64 KiB. A
        corrupt record or a storage fault is logged as a WARNING on the ``resultkit``
        logger and counts as a miss, so the caller recomputes and overwrites it.
        """
        try:
            return self._load(key)
        except FileNotFoundError:
            return None
        except (RecordCorruptError, SerializationError) as exc:
            logger.warning("record %r in %s is unusable, treating it as a miss: %s",
                           key, self.storage.describe(), exc)
        except Exception as exc:
            validate_key(key)  # a bad key is the caller's error, not a miss (checked off the hit path)
            # A storage fault (or a backend raising its own exception type) must not fail
            # the caller: the value is recomputed. Unexpected types keep their traceback.
            expected = isinstance(exc, (StorageError, OSError))
            logger.warning("could not read record %r from %s, treating it as a miss: %s: %s",
                           key, self.storage.describe(), type(exc).__name__, exc,
                           exc_info=not expected)
        return None

    def exists(self, key: str) -> bool:
        """Whether an unexpired, readable record is at ``key``; reads only the header.

        A record with a corrupt header (or unsigned, on a signing store) does not exist.
        """
        validate_key(key)
        try:
            _, metadata = self._read_header(key)
        except FileNotFoundError:
            return False
        except RecordCorruptError as exc:
            logger.warning("record %r in %s has an unusable header: %s", key, self.storage.describe(), exc)
            return False
        return self._visible(key, metadata)

    aexists = in_thread(exists)

    def metadata(self, key: str) -> ResultRecordMetadata:
        """The header of the record at ``key``, without reading its payload."""
        validate_key(key)
        try:
            _, metadata = self._read_header(key)
        except FileNotFoundError:
            raise RecordNotFound(f"no record at key {key!r} in {self.storage.describe()}") from None
        if not self._visible(key, metadata):
            raise RecordNotFound(f"the record at key {key!r} in {self.storage.describe()} has expired "
                                 "or belongs to a commit that has not finished")
        return metadata

    def delete(self, key: str) -> bool:
        """Delete the record at ``key``; True if one was there."""
        return self.storage.delete(key)

    def list(self, prefix: str = "", include_expired: bool = False) -> Iterator[str]:
        """Keys of the records below ``prefix``.

        By default each record's header is read and expired or unreadable records are
        skipped (expired is missing everywhere); ``include_expired=True`` lists every
        stored key without reading anything but the listing.
        """
        keys = self.storage.list(prefix)
        if include_expired:
            return keys
        return (key for key in keys if self.exists(key))

    def reference(self, key: str) -> ResultReference:
        """A :class:`ResultReference` to the record at ``key`` in this store's storage."""
        return ResultReference(self.storage, validate_key(key), self.serializer)

    def verify(self, key: str) -> None:
        """Check the record at ``key`` without deserializing it; ``RecordCorruptError`` names what failed.

        Checks the header (format, header hash, and the signature on a signing store),
        then streams the payload through its checksum and compares size and digest, so
        verifying a pickle runs no code from it. Expired records are verified too.

        >>> store.verify("answer")                              # doctest: +SKIP
        """
        self.verified_metadata(key)

    def verified_metadata(self, key: str) -> tuple[ResultRecordMetadata, int]:
        """:meth:`verify`, returning the record's metadata and its size in bytes on storage."""
        from .verify import verify_record

        return verify_record(self.storage, key, self._parse)

    # -- internals -----------------------------------------------------------------

    def _parse(self, key: str, head: bytes, requested: int) -> tuple[int, ResultRecordMetadata, bytes, int]:
        """(header length with newline, metadata, head, bytes requested) from a read of the record's start.

        ``len(head) < requested`` means ``head`` is the whole record.
        """
        head, header_size, requested = read_header(self.storage.read_head, key, requested, head)
        try:
            header, metadata = decode_header(head[: header_size - 1])
        except RecordCorruptError as exc:
            raise RecordCorruptError(f"record {key!r}: {exc}") from None
        if metadata.storage_key != key:
            # A record copied or moved to another key must not answer for that key, signed or not.
            raise key_mismatch(key, metadata.storage_key)
        if self._signing_key is not None:
            verify_header(header, self._signing_key, key)
            if not metadata.payload_hash.startswith(BLAKE3 + ":"):
                raise RecordCorruptError(f"signed record {key!r} must carry a blake3 payload hash")
        return header_size, metadata, head, requested

    def _read_header(self, key: str) -> tuple[int, ResultRecordMetadata]:
        header_size, metadata, _, _ = self._parse(key, self.storage.read_head(key, _HEADER_READ_SIZE),
                                               _HEADER_READ_SIZE)
        return header_size, metadata

    def _load(self, key: str) -> ResultRecord[Any] | None:
        """The verified record at ``key``; None if expired; ``FileNotFoundError`` if absent."""
        for _ in range(_REPLACED_RETRIES):
            try:
                return self._load_once(key)
            except RecordReplaced:
                continue
        raise StorageError(
            f"record {key!r} in {self.storage.describe()} kept being replaced while it was read; "
            "retry, or serialize writers with a SERIALIZABLE transaction"
        )

    def _load_once(self, key: str) -> ResultRecord[Any] | None:
        size = self.storage.first_read_size
        return self._record_from_head(key, self.storage.read_head(key, size), size)

    def warm_up(self) -> None:
        """Run the cache-hit decode path once on an in-memory record, so a first real hit is fast.

        A process's first hit otherwise pays for first use of everything it touches
        (orjson, xxhash, the serializer, datetime parsing, a few hundred us in all).
        No storage I/O: the record is encoded here and decoded by the same code a hit runs.
        """
        if self._signing_key is not None:
            return  # a signed record needs a real key's signature; nothing to gain here
        view = as_byte_view(self.serializer.dumps(0))
        metadata = ResultRecordMetadata(
            storage_key=_WARM_UP_KEY, serializer=self._serializer_config,
            created=datetime.now(timezone.utc), payload_size=view.nbytes,
            payload_hash=checksum((view,), XXH3_128, view.nbytes), resultkit_version=RESULTKIT_VERSION,
        )
        head = encode_header(metadata) + view.tobytes()
        self._record_from_head(_WARM_UP_KEY, head, len(head) + 1)
        # The first read's 64 KiB buffer would fault in fresh heap pages (~50 us); a
        # buffer of that size made and freed here leaves them mapped for it.
        del head
        bytes(_FIRST_READ_SIZE)

    def _record_from_head(self, key: str, head: bytes, requested: int) -> ResultRecord[Any] | None:
        """The record whose first bytes are ``head`` (the whole record if shorter than ``requested``)."""
        header_size, metadata, head, requested = self._parse(key, head, requested)
        # _visible, inlined: this is every cache hit.
        if (metadata.expiration is not None and metadata.is_expired()) or (
                metadata.commit is not None and not commit_finished(self.storage, metadata.commit, key)):
            return None
        end = header_size + metadata.payload_size
        payload: Buffer
        if len(head) >= end:
            if len(head) > end:
                raise RecordCorruptError(
                    f"record {key!r} is longer than its header says ({len(head)} > {end} bytes)"
                )
            payload = memoryview(head)[header_size:end]
            verify_checksum(payload, metadata.payload_hash, key)
        elif len(head) < requested:
            raise RecordCorruptError(
                f"record {key!r} is truncated: {len(head)} of {end} bytes present"
            )
        else:
            payload = read_payload(self.storage, key, head, header_size, metadata.payload_size)
            try:
                verify_checksum(payload, metadata.payload_hash, key)
            except RecordCorruptError:
                # Streamed from a store that does not pin the version it reads (GCS): a
                # record replaced mid-stream mixes two versions. A changed header says so.
                if self._header_changed(key, head[:header_size]):
                    raise RecordReplaced from None
                raise
        if metadata.is_literal:
            if metadata.payload_size:
                raise RecordCorruptError(f"literal record {key!r} has a non-empty payload")
            return ResultRecord(metadata, metadata.literal, storage=self.storage)
        value = self._serializer_for(metadata.serializer).loads(payload)
        return ResultRecord(metadata, value, storage=self.storage)

    def _visible(self, key: str, metadata: ResultRecordMetadata) -> bool:
        """Unexpired, and (for a record of a group commit) its commit finished."""
        if metadata.is_expired():
            return False
        return metadata.commit is None or commit_finished(self.storage, metadata.commit, key)

    def _header_changed(self, key: str, header: bytes) -> bool:
        try:
            return self.storage.read_head(key, len(header)) != header
        except FileNotFoundError:
            return True  # deleted since: the retry finds it absent

    def _serializer_for(self, config: dict[str, Any]) -> Serializer:
        if config == self._serializer_config:
            return self.serializer
        cache_key = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
        serializer = self._serializers.get(cache_key)
        if serializer is None:
            try:
                serializer = Serializer.from_config(config)
            except ResultkitError:
                raise
            except Exception as exc:  # a broken third-party serializer class
                raise SerializationError(
                    f"cannot build serializer {config!r} named by the record: {exc}"
                ) from exc
            self._serializers[cache_key] = serializer
        return serializer
