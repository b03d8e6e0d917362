"""``ObjectStoreLockManager``: leased locks kept in the bucket itself (S3, GCS), no server.

The lock on key ``K`` is one small JSON object, ``<prefix>/.rk-locks/K``, changed only
by conditional writes, so two writers can never both win:

- take a free lock: create the object only if absent (S3 ``If-None-Match: *``, GCS
  ``ifGenerationMatch=0``), or replace a released or expired one only if it is still
  the version that was read (S3 ``If-Match: <ETag>``, GCS ``ifGenerationMatch=<generation>``);
- renew (the lease keeper of ``locking/lease.py`` does it every third of the lease) and
  release: replace the holder's own version, conditionally. A release leaves a small
  "free" object behind rather than deleting, so no step needs a conditional delete.

A lease has expired when its object has not changed for longer than its lease, as
timed by the waiter's own monotonic clock: renewals change the object's version, so
no two machines' clocks are ever compared. A dead holder's lock is therefore taken
over at most one lease after a waiter first looked at it.

No condition is ever dropped: a backend that answers a conditional write with success
while another writer won is unsafe, and this manager has no fallback for it. On the
emulators used in the tests, moto honours every S3 condition used here and
fake-gcs-server 1.54 honours ``ifGenerationMatch`` on the multipart uploads used here
(not on deletes, which are not used).
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigurationError
from .base import (
    DEFAULT_HOLD_TIMEOUT,
    PollingLockManager,
    Unreachable,
    check_lock_args,
    not_held_error,
)

__all__ = ["ObjectStoreLockManager", "LOCKS_PREFIX"]

#: Folder (under the storage's prefix) that holds the lease objects; never listed.
LOCKS_PREFIX = ".rk-locks"

_HOST = socket.gethostname()
_T = TypeVar("_T")


class _Lease:
    """One read of a lease object: its fields and the version a conditional write names."""

    __slots__ = ("holder", "lease", "version")

    def __init__(self, holder: str | None, lease: float, version: str) -> None:
        self.holder = holder  # None: released
        self.lease = lease
        self.version = version


class _Backend(abc.ABC):
    """Conditional reads and writes of small objects on one object store."""

    #: A version no real object has, for checking that stale versions are refused.
    wrong_version = ""

    @abc.abstractmethod
    def read(self, path: str) -> tuple[bytes, str] | None:
        """The object's bytes and version, or None when absent."""
        ...

    @abc.abstractmethod
    def create(self, path: str, body: bytes) -> str | None:
        """Write only if absent; the new version, or None when it exists."""
        ...

    @abc.abstractmethod
    def replace(self, path: str, body: bytes, version: str) -> str | None:
        """Write only if the object is still at ``version``; the new version, or None."""
        ...


def _s3_condition_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is S3's answer to an unmet condition (412), or a concurrent one (409)."""
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None) or getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict")


class _S3(_Backend):
    wrong_version = '"00000000000000000000000000000000"'

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    def read(self, path: str) -> tuple[bytes, str] | None:
        from fsspec.asyn import sync

        bucket, key = self._split(path)
        try:
            response = self.fs.call_s3("get_object", Bucket=bucket, Key=key)
        except FileNotFoundError:
            return None
        body = sync(self.fs.loop, response["Body"].read)
        return bytes(body), str(response["ETag"])

    def _put(self, path: str, body: bytes, **condition: str) -> str | None:
        bucket, key = self._split(path)
        try:
            response = self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body,
                                       ContentType="application/json", **condition)
        except OSError as exc:
            if _s3_condition_failed(exc):
                return None
            raise
        return str(response["ETag"])

    def create(self, path: str, body: bytes) -> str | None:
        return self._put(path, body, IfNoneMatch="*")

    def replace(self, path: str, body: bytes, version: str) -> str | None:
        return self._put(path, body, IfMatch=version)


class _GCS(_Backend):
    wrong_version = "1"

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def read(self, path: str) -> tuple[bytes, str] | None:
        from fsspec.asyn import sync

        bucket, _, key = path.partition("/")
        try:
            headers, body = sync(self.fs.loop, self.fs._call, "GET", "b/{}/o/{}", bucket, key,
                                 alt="media")
        except FileNotFoundError:
            return None
        generation = headers.get("X-Goog-Generation") or headers.get("x-goog-generation")
        if generation is None:
            raise ConfigurationError(
                f"GCS answered a read of {path!r} without an X-Goog-Generation header, so the "
                "lock on it cannot be changed safely; use RedisLockManager for this storage"
            )
        return bytes(body), str(generation)

    def _upload(self, path: str, body: bytes, generation: str) -> str | None:
        from fsspec.asyn import sync

        bucket, _, key = path.partition("/")
        boundary = "==rk-lease=="
        metadata = json.dumps({"name": key, "contentType": "application/json"})
        data = (f"--{boundary}\nContent-Type: application/json; charset=UTF-8\n\n{metadata}\n"
                f"--{boundary}\nContent-Type: application/json\n\n").encode() + body + \
            f"\n--{boundary}--".encode()
        try:
            # A multipart upload: the kind of upload whose precondition every GCS
            # (and fake-gcs-server) checks.
            response = sync(
                self.fs.loop, self.fs._call, "POST",
                f"{self.fs._location}/upload/storage/v1/b/{bucket}/o",
                uploadType="multipart", ifGenerationMatch=generation, data=data, json_out=True,
                headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
            )
        except FileExistsError:  # gcsfs's name for 412 Precondition Failed
            return None
        return str(response["generation"])

    def create(self, path: str, body: bytes) -> str | None:
        return self._upload(path, body, "0")

    def replace(self, path: str, body: bytes, version: str) -> str | None:
        return self._upload(path, body, version)


class ObjectStoreLockManager(PollingLockManager):
    """Locks shared by every process that can write to one S3 or GCS storage.

    The default lock manager of ``S3Storage`` and ``GCSStorage``, so SERIALIZABLE works
    across machines with nothing but the bucket.

    >>> from resultkit.storage import S3Storage
    >>> locks = ObjectStoreLockManager(S3Storage("my-bucket", "results"))  # doctest: +SKIP
    >>> locks.acquire_lock("abc", holder="worker-1", hold_timeout=60)      # doctest: +SKIP
    True
    """

    #: Polling bounds, in seconds: each poll is a request, which a cloud store bills.
    first_poll = 0.01
    slowest_poll = 0.2

    def __init__(self, storage: Any) -> None:
        from ..storage.fsspec import FsspecStorage

        if not isinstance(storage, FsspecStorage) or storage.protocol not in ("s3", "s3a", "gs", "gcs"):
            raise ConfigurationError(
                f"ObjectStoreLockManager needs S3 or GCS storage (S3Storage, GCSStorage, or an "
                f"s3:// or gs:// URL), got {storage!r}; use FileLockManager for local storage or "
                "RedisLockManager elsewhere"
            )
        self.storage = storage
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._backend: _Backend | None = None
        # key -> (version, monotonic time it was first seen): how long a lease stood still.
        self._seen: dict[str, tuple[str, float]] = {}
        # key -> (holder, version) of leases taken here: release and renewal need no read.
        self._mine: dict[str, tuple[str, str]] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"ObjectStoreLockManager({self.storage.describe()!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"storage": self.storage}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.storage = state["storage"]
        self._init_runtime()

    @property
    def backend(self) -> _Backend:
        """The conditional-write client for the storage's protocol, checked on first use."""
        if self._backend is None:
            with self._guard:
                if self._backend is None:
                    fs = self.storage.fs
                    backend = _S3(fs) if self.storage.protocol in ("s3", "s3a") else _GCS(fs)
                    self._check_conditions(backend)
                    self._backend = backend
        return self._backend

    def _check_conditions(self, backend: _Backend) -> None:
        """Refuse a store that ignores conditional writes: its locks would not exclude anyone.

        Three requests once per manager: create a probe object, create it again, replace
        it naming a wrong version. The last two must both be refused.
        """
        path = self.lease_path(f"{LOCKS_PREFIX}-probe-{uuid.uuid4().hex}")
        body = b'{"probe": true}'
        key = path.rsplit("/", 1)[-1]
        try:
            created = self._io("create", key, lambda: backend.create(path, body))
            again = self._io("create", key, lambda: backend.create(path, body))
            replaced = self._io("replace", key,
                                lambda: backend.replace(path, body, backend.wrong_version))
        finally:
            # Our own unique probe: no condition needed; a stray one left behind is harmless.
            with contextlib.suppress(Exception):
                self.storage.fs.rm_file(path)
        if created is None or again is not None or replaced is not None:
            raise ConfigurationError(
                f"{self.storage.describe()} does not honour conditional writes (a second "
                "create-if-absent or a write naming a stale version succeeded), so locks kept "
                "in it would not exclude anyone and SERIALIZABLE would run bodies more than "
                "once. Configure another lock manager for it, e.g. "
                "cache_policy.configure(lock_manager=RedisLockManager('redis://host:6379/0'))"
            )

    def lease_path(self, key: str) -> str:
        """The object store path of ``key``'s lease object."""
        return self.storage.path_of(f"{LOCKS_PREFIX}/{key}")

    # -- one request each, with the storage's retries -------------------------------------

    def _io(self, action: str, key: str, fn: Callable[[], _T]) -> _T:
        from ..errors import StorageError
        from ..storage.retry import call_with_retries, is_transient

        try:
            return call_with_retries(fn, backend=self.storage.describe(), action=f"lock {action}",
                                     key=key, policy=self.storage.retry_policy)
        except StorageError as exc:
            if not is_transient(exc):
                raise
            # An outage: waiting calls retry with backoff until their lock timeout.
            raise Unreachable(
                f"{self!r} cannot reach {self.storage.describe()} to {action} the lock on {key!r} "
                f"({exc}); check the endpoint and the network"
            ) from exc

    def _read(self, key: str) -> _Lease | None:
        path = self.lease_path(key)
        found = self._io("read", key, lambda: self.backend.read(path))
        if found is None:
            return None
        body, version = found
        try:
            data = json.loads(body)
            holder = data["holder"]
            lease = float(data["lease"])
        except (ValueError, KeyError, TypeError):
            # Not ours, or torn by hand: treat it as a lease of the default length, so it
            # can still be taken over once it stood still that long.
            holder, lease = "unknown", DEFAULT_HOLD_TIMEOUT
        return _Lease(holder, lease, version)

    def _body(self, key: str, holder: str | None, lease: float) -> bytes:
        # The nonce makes every write a new version (S3 ETags are content hashes).
        return json.dumps({"key": key, "holder": holder, "lease": lease, "host": _HOST,
                           "pid": os.getpid(), "nonce": uuid.uuid4().hex}).encode()

    def _expired(self, key: str, lease: _Lease) -> bool:
        """Whether ``lease`` stood still (same version) for longer than its lease, as seen here."""
        now = time.monotonic()
        with self._guard:
            seen = self._seen.get(key)
            if seen is None or seen[0] != lease.version:
                self._seen[key] = (lease.version, now)
                return False
            return now - seen[1] > lease.lease

    def _write(self, key: str, holder: str | None, lease: float, version: str | None) -> str | None:
        path, body = self.lease_path(key), self._body(key, holder, lease)
        if version is None:
            return self._io("create", key, lambda: self.backend.create(path, body))
        return self._io("replace", key, lambda: self.backend.replace(path, body, version))

    # -- the PollingLockManager primitives ---------------------------------------------------

    def _remember(self, key: str, holder: str, version: str | None) -> bool:
        if version is None:
            return False
        with self._guard:
            self._mine[key] = (holder, version)
            self._seen.pop(key, None)
        return True

    def _mine_version(self, key: str, holder: str) -> str | None:
        with self._guard:
            mine = self._mine.pop(key, None)
        return mine[1] if mine is not None and mine[0] == holder else None

    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        # Most keys are free when first asked for: try to create the lease outright (one
        # request); if it exists, read it and decide below.
        if key not in self._seen and key not in self._mine \
                and self._remember(key, holder, self._write(key, holder, hold_timeout, None)):
            return True
        current = self._read(key)
        if current is not None and current.holder not in (None, holder) \
                and not self._expired(key, current):
            return False
        # False when another writer changed it first. (If a retried write had in fact
        # succeeded, nobody renews that lease and it expires: slow, never unsafe.)
        return self._remember(key, holder, self._write(
            key, holder, hold_timeout, None if current is None else current.version))

    def lock_holder(self, key: str) -> str | None:
        """The holder of the live lease on ``key``, or None (free, released or expired)."""
        current = self._read(key)
        if current is None or current.holder is None or self._expired(key, current):
            return None
        return current.holder

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; ``LockNotHeldError`` if another holder holds it."""
        check_lock_args(key, holder)
        version = self._mine_version(key, holder)
        if version is not None and self._write(key, None, 0.0, version) is not None:
            return  # released the version we wrote: one request
        current = self._read(key)
        if current is None or current.holder is None:
            return  # already released: a no-op, as in Prefect
        if current.holder != holder:
            raise not_held_error(key, holder, current.holder)
        if self._write(key, None, 0.0, current.version) is None:
            latest = self._read(key)
            if latest is not None and latest.holder not in (None, holder):
                raise not_held_error(key, holder, latest.holder)

    def extend_lock(self, key: str, holder: str, hold_timeout: float) -> bool:
        """Renew ``holder``'s lease on ``key`` for ``hold_timeout`` seconds; False if not held."""
        check_lock_args(key, holder, hold_timeout)
        version = self._mine_version(key, holder)
        if version is not None and self._remember(key, holder, self._write(key, holder, hold_timeout,
                                                                              version)):
            return True
        current = self._read(key)
        if current is None or current.holder != holder:
            return False
        return self._remember(key, holder, self._write(key, holder, hold_timeout, current.version))
