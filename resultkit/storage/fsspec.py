"""``FsspecStorage``: any fsspec file system (object stores, ``file://``, ``memory://``...).

Writes are atomic on every kind of file system:

- object stores: one PUT (``pipe_file``) for payloads up to ``single_put_limit``; above
  it, on S3, a parallel multipart upload of the chunks in place (``parallel.py``), and
  elsewhere (or for chunks that arrive from an iterator) a multipart/resumable upload
  through ``fs.open(path, "wb")``. Either is completed only when every part was written.
  On error the upload is discarded (aborted), so no partial object ever appears;
- file systems with rename (``file``, ``sftp``...): a ``.rk-tmp-<uuid>`` file beside the
  target, then ``mv``;
- ``memory://``: one ``pipe_file`` of the joined chunks.

Transient faults are retried (see ``retry.py``); other failures raise ``StorageError``.
The fsspec file system object is built lazily and dropped when pickling, so instances
travel to worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from functools import partial
from typing import IO, Any, ClassVar, TypeVar, cast

import fsspec
from fsspec.core import split_protocol

from .._targets import install_hint
from ..errors import ConfigurationError, ResultkitError, StorageError
from . import parallel
from .base import (
    RESERVED_PREFIX,
    Buffer,
    IncompleteUpload,
    LockManagerSpec,
    Storage,
    TempFile,
    hidden_from_listing,
    remove_local_temp_file,
    stale_local_temp_files,
)
from .registry import storage_entry
from .retry import DEFAULT_RETRY, RetryPolicy, call_with_retries

__all__ = ["FsspecStorage", "accepted_options", "check_options", "filesystem_class"]

T = TypeVar("T")

_ONE_TRY = RetryPolicy(attempts=1)

# Object stores whose conditional writes carry the default lock manager (ObjectStoreLockManager).
_LEASE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs"})
# File systems where a rename within a directory is atomic: write a temp file, then mv.
_RENAME_PROTOCOLS = frozenset({"file", "local", "sftp", "ssh", "smb", "hdfs", "arrow_hdfs"})
# Held entirely in this process: joining the chunks costs nothing a PUT would not.
_IN_PROCESS_PROTOCOLS = frozenset({"memory"})
# Below this, joining a write's chunks for one PUT costs less than reading them in place.
_JOIN_BELOW = 1 << 20
# Where a GCS write keeps its parts until they are composed: one folder per write.
_PARTS_FOLDER = RESERVED_PREFIX + "parts"
# Keys of fsspec's ``info()`` that change when an object is replaced, most specific first.
_VERSION_FIELDS = ("generation", "ETag", "etag", "VersionId", "ino", "mtime", "LastModified",
                   "updated", "created", "size")


def filesystem_class(protocol: str) -> type[Any]:
    """The fsspec class for ``protocol``; ``ConfigurationError`` saying what to install.

    >>> filesystem_class("memory").__name__
    'MemoryFileSystem'
    """
    try:
        return cast(type[Any], fsspec.get_filesystem_class(protocol))
    except ValueError:
        known = ", ".join(sorted(p for p in fsspec.available_protocols() if len(p) > 1)[:40])
        raise ConfigurationError(
            f"unknown storage protocol {protocol!r}; use a local path or a URL with a known "
            f"fsspec protocol (s3://, gs://, memory://, file://, ...: {known})"
        ) from None
    except ImportError as exc:
        entry = storage_entry(protocol)  # the registry says which extra installs it
        hint = install_hint(entry.extra if entry else None) or (
            f"install the fsspec backend for {protocol!r} ({exc})"
        )
        raise ConfigurationError(
            f"storage protocol {protocol!r} needs a package that is not installed: {hint}"
        ) from None


# Options every fsspec file system takes (the instance and listings caches).
_FSSPEC_CACHE_OPTIONS = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time",
                                   "max_paths"})
# Where s3fs sends options its constructor does not name: aiobotocore's AioSession.
_S3_SESSION_OPTIONS = frozenset({"session_vars", "event_hooks", "include_builtin_handlers", "profile"})
# Protocols whose file system takes a known set of options. Elsewhere (sftp, http, ...)
# leftover options go on to a client library, so they cannot be checked here.
_CHECKED_PROTOCOLS = {"s3": _S3_SESSION_OPTIONS, "s3a": _S3_SESSION_OPTIONS,
                      "gs": frozenset(), "gcs": frozenset()}


def accepted_options(fs_class: type[Any]) -> frozenset[str]:
    """The keyword options ``fs_class``'s constructors name, up its class hierarchy."""
    names = set(_FSSPEC_CACHE_OPTIONS)
    for cls in fs_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    names.discard("self")
    return frozenset(names)


def check_options(backend: str, protocol: str, fs_class: type[Any], names: Iterable[str]) -> None:
    """``ConfigurationError`` naming any option ``fs_class`` would reject (s3 and gcs only)."""
    extra = _CHECKED_PROTOCOLS.get(protocol)
    if extra is None:
        return
    accepted = accepted_options(fs_class) | extra
    unknown = sorted(set(names) - accepted)
    if not unknown:
        return
    library = f"{fs_class.__module__.partition('.')[0]}.{fs_class.__name__}"
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    retries = " Retries of S3 requests are set with config_kwargs={'retries': {'max_attempts': N}}." \
        if "retries" in unknown and protocol in ("s3", "s3a") else ""
    raise ConfigurationError(
        f"{backend} does not take option(s) {', '.join(hints)}: {library} accepts "
        f"{', '.join(sorted(accepted))}.{retries}"
    )


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status a client library attached to ``exc`` or one of its causes, if any."""
    current: BaseException | None = exc
    while current is not None:
        status = getattr(current, "code", None) or getattr(current, "status", None)
        if isinstance(status, int):
            return status
        response = getattr(current, "response", None)  # botocore's ClientError
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(status, int):
                return status
        current = current.__cause__ or current.__context__
    return None


def _strip_slashes(path: str) -> str:
    return path.rstrip("/") if path.strip("/") else path[:1]


class FsspecStorage(Storage):
    """Storage on any fsspec URL; ``options`` go to the file system's constructor.

    ``env_options`` maps option names to the environment variables to read them from when
    the file system is built (credentials stay out of saved blocks and pickles)::

        FsspecStorage("sftp://host/results", env_options={"password": "SFTP_PASSWORD"})
    """

    block_type = "fsspec"
    #: Payloads up to this size are sent in one PUT; larger ones stream as a multipart upload.
    single_put_limit: int = 16 << 20
    #: Part size of multipart uploads and of the ranged reads of a large record (>= 5 MiB,
    #: S3's smallest part). Set with ``part_size=``.
    part_size: int = 8 << 20
    #: Parts uploaded or ranges read at once for one large record. Set with
    #: ``transfer_concurrency=``.
    transfer_concurrency: int = 8
    #: How transient faults are retried (on top of the client library's own retries).
    retry_policy: RetryPolicy = DEFAULT_RETRY
    #: Extra keyword arguments for ``cat_file`` on whole-object reads.
    _cat_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, url: str, *, env_options: Mapping[str, str] | None = None, part_size: int | None = None,
                 transfer_concurrency: int | None = None, **options: Any) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigurationError(
                f"FsspecStorage url must be a non-empty string such as 's3://bucket/prefix', got {url!r}"
            )
        self._transfer: dict[str, int] = {}
        if part_size is not None:
            if type(part_size) is not int or part_size < 5 << 20:
                raise ConfigurationError(
                    f"{type(self).__name__} part_size must be an int of at least 5 MiB (5242880, S3's "
                    f"smallest multipart part), got {part_size!r}"
                )
            self.part_size = self._transfer["part_size"] = part_size
        if transfer_concurrency is not None:
            if type(transfer_concurrency) is not int or not 1 <= transfer_concurrency <= 64:
                raise ConfigurationError(
                    f"{type(self).__name__} transfer_concurrency must be an int from 1 to 64 (parts "
                    f"moved at once), got {transfer_concurrency!r}"
                )
            self.transfer_concurrency = self._transfer["transfer_concurrency"] = transfer_concurrency
        protocol, _ = split_protocol(url)
        self.protocol: str = protocol or "file"
        self.url = url
        self.options: dict[str, Any] = dict(options)
        self.env_options: dict[str, str] = dict(env_options or {})
        for name, var in self.env_options.items():
            if not isinstance(var, str) or not var:
                raise ConfigurationError(
                    f"env_options[{name!r}] must name an environment variable, got {var!r}"
                )
        fs_class = filesystem_class(self.protocol)
        check_options(type(self).__name__, self.protocol, fs_class, [*self.options, *self.env_options])
        self.root: str = _strip_slashes(fs_class._strip_protocol(url))
        if not self.root or (self.root == "/" and self.protocol not in ("memory", "file", "local")):
            raise ConfigurationError(
                f"storage URL {url!r} names no bucket or folder; use e.g. '{self.protocol}://bucket/prefix'"
            )
        if self.protocol not in _RENAME_PROTOCOLS and self.protocol not in _IN_PROCESS_PROTOCOLS:
            # One ranged GET returns records up to 4 MiB whole; a larger record wastes at
            # most this much of a transfer it needs anyway (its payload is streamed again).
            self.first_read_size = 4 << 20
        self._fs: Any = None
        self._fs_lock = threading.Lock()

    # -- identity, pickling, blocks ------------------------------------------------------

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, FsspecStorage)
            and (other.url, other.options, other.env_options, other._transfer)
            == (self.url, self.options, self.env_options, self._transfer)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.url))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fs"] = None
        del state["_fs_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fs_lock = threading.Lock()

    def describe(self) -> str:
        return self.url

    def to_block(self) -> dict[str, Any]:
        return {"url": self.url, "env_options": dict(self.env_options), **self._transfer, **self.options}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FsspecStorage:
        """Any fsspec URL: ``FsspecStorage(url, **options)``."""
        return cls(url, **options)

    # -- what this storage names for the layers above ---------------------------------------

    def default_lock_manager(self) -> LockManagerSpec | None:
        """Leases in the bucket (``ObjectStoreLockManager``) on S3 and GCS; None elsewhere."""
        return LockManagerSpec("object-store", {"storage": self}) if self.protocol in _LEASE_PROTOCOLS else None

    def stale_temp_files(self, min_age: float) -> Sequence[TempFile]:
        """The temporary files of ``file://`` storage (other file systems' are not swept)."""
        return stale_local_temp_files(self.root, min_age) if self.protocol in ("file", "local") else []

    def remove_temp_file(self, temp: TempFile) -> bool:
        return remove_local_temp_file(temp) if self.protocol in ("file", "local") else False

    # -- the file system -----------------------------------------------------------------

    def _fs_options(self) -> dict[str, Any]:
        options = dict(self.options)
        for name, var in self.env_options.items():
            try:
                options[name] = os.environ[var]
            except KeyError:
                raise ConfigurationError(
                    f"{self!r} reads option {name!r} from environment variable {var!r}, which is "
                    f"not set; export {var}=... or save the storage without it"
                ) from None
        return options

    @property
    def fs(self) -> Any:
        """The fsspec file system, built on first use."""
        fs = self._fs
        if fs is None:
            with self._fs_lock:
                fs = self._fs
                if fs is None:
                    try:
                        fs = filesystem_class(self.protocol)(**self._fs_options())
                        if self.protocol in ("s3", "s3a"):
                            # Builds the client now (no request is sent), so a bad option
                            # value fails here, named, not as a TypeError on first request.
                            fs.connect()
                    except ResultkitError:
                        raise
                    except Exception as exc:
                        raise ConfigurationError(
                            f"cannot set up {self!r} with options {sorted(self.options)}: "
                            f"{type(exc).__name__}: {exc}; check those options' names and values"
                        ) from exc
                    self._fs = fs
        return fs

    def path_of(self, key: str) -> str:
        """The fsspec path (no protocol) that holds ``key``."""
        return f"{self.root}/{key}" if self.root != "/" else f"/{key}"

    def _call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        try:
            return call_with_retries(fn, backend=self.describe(), action=action, key=key,
                                     policy=self.retry_policy)
        except StorageError as exc:
            # A folder where an object was expected: there is no object at that key.
            if isinstance(exc.__cause__, (IsADirectoryError, NotADirectoryError)) and action != "write":
                raise FileNotFoundError(f"no object at key {key!r} in {self.describe()}") from None
            raise

    def _info(self, key: str) -> dict[str, Any] | None:
        """``fs.info`` of a file at ``key``, or None when absent (or a folder)."""
        path = self.path_of(key)
        fs = self.fs
        # Another process may have written or deleted it: never trust a cached listing.
        fs.invalidate_cache(path)
        try:
            info = self._call("stat", key, lambda: fs.info(path))
        except FileNotFoundError:
            return None
        return cast("dict[str, Any]", info) if info.get("type") == "file" else None

    # -- primitives ----------------------------------------------------------------------

    def _read(self, key: str) -> bytes:
        path, fs = self.path_of(key), self.fs
        return cast(bytes, self._call("read", key, lambda: fs.cat_file(path, **self._cat_options)))

    def _read_head(self, key: str, size: int) -> bytes:
        if size <= 0:
            if not self._exists(key):
                raise FileNotFoundError(f"no object at key {key!r} in {self.describe()}")
            return b""
        path, fs = self.path_of(key), self.fs
        read_head: Callable[[], bytes] = lambda: cast(bytes, fs.cat_file(path, start=0, end=size))  # noqa: E731
        if self.protocol in ("s3", "s3a"):
            bucket, _, name = path.partition("/")
            read_head = partial(self._run, parallel.s3_head(fs, bucket, name, size))
        elif self.protocol in ("gs", "gcs"):
            read_head = partial(self._run, parallel.gcs_head(fs, path, size))
        try:
            return self._call("read the head of", key, lambda: read_head())
        except StorageError as exc:
            # A ranged GET of an empty object is "416 range not satisfiable" (S3, GCS): a
            # range from byte 0 is unsatisfiable only when the object is empty.
            if _http_status(exc) == 416:
                return b""
            info = self._info(key)
            if info is not None and info.get("size") == 0:
                return b""
            raise

    def _open_read(self, key: str) -> IO[bytes]:
        path, fs = self.path_of(key), self.fs
        return cast("IO[bytes]", self._call("open", key, lambda: fs.open(path, "rb")))

    def _run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the file system's event loop; cancelled if the caller is interrupted."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.fs.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the coroutine aborts what it started (a multipart upload)
            raise

    def _read_rest_into(self, key: str, head: bytes, view: memoryview) -> bool:
        if not isinstance(head, parallel.ObjectHead):
            return False
        path, fs = self.path_of(key), self.fs
        part, concurrency = self.part_size, self.transfer_concurrency
        if self.protocol in ("s3", "s3a"):
            bucket, _, name = path.partition("/")
            self._call("read", key, lambda: self._run(
                parallel.s3_read_into(fs, bucket, name, head, view, part, concurrency)))
            return True
        if self.protocol in ("gs", "gcs"):
            self._call("read", key, lambda: self._run(
                parallel.gcs_read_into(fs, path, head, view, part, concurrency)))
            return True
        return False

    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None:
        if self.protocol in _RENAME_PROTOCOLS:
            self._write_via_rename(key, chunks)
        elif self.protocol in _IN_PROCESS_PROTOCOLS:
            data = b"".join(chunks)
            path, fs = self.path_of(key), self.fs
            self._call("write", key, lambda: fs.pipe_file(path, data))
        else:
            self._write_object(key, chunks)

    def _write_object(self, key: str, chunks: Iterable[Buffer]) -> None:
        path, fs = self.path_of(key), self.fs
        if isinstance(chunks, list) and self.protocol in ("s3", "s3a"):
            views = [memoryview(chunk).cast("B") for chunk in chunks]
            total = sum(view.nbytes for view in views)
            bucket, _, name = path.partition("/")
            if total > self.single_put_limit:
                parts = parallel.plan_parts(views, parallel.wave_size(total, self.part_size,
                                                                      self.transfer_concurrency))
                # Retried as a whole (the chunks stay in memory); a failed try aborts its upload.
                self._call("write", key, lambda: self._run(
                    parallel.s3_upload(fs, bucket, name, parts, self.transfer_concurrency)))
                return
            if total > _JOIN_BELOW:  # one PUT read from the buffers in place, no join
                self._call("write", key, lambda: self._run(parallel.s3_put(fs, bucket, name, views)))
                return
        if isinstance(chunks, list) and self.protocol in ("gs", "gcs"):
            views = [memoryview(chunk).cast("B") for chunk in chunks]
            total = sum(view.nbytes for view in views)
            if total > self.single_put_limit:
                pieces = parallel.plan_compose_parts(
                    views, parallel.wave_size(total, self.part_size, self.transfer_concurrency))
                if len(pieces) <= parallel.GCS_MAX_COMPOSE:
                    # Beside the storage's other objects, under a reserved (never listed) name.
                    folder = f"{self.root}/{_PARTS_FOLDER}/{uuid.uuid4().hex}"
                    self._call("write", key, lambda: self._run(
                        parallel.gcs_upload(fs, path, pieces, folder, self.transfer_concurrency)))
                    return
        pending = bytearray()
        iterator = iter(chunks)
        streaming = False
        for chunk in iterator:
            pending += chunk
            if len(pending) > self.single_put_limit:
                streaming = True
                break
        if streaming:
            # Not retried as a whole: the chunk iterator can be consumed only once
            # (the client library retries individual parts).
            call_with_retries(lambda: self._stream_upload(path, pending, iterator),
                              backend=self.describe(), action="write", key=key, policy=_ONE_TRY)
            return
        body = bytes(pending)
        pending.clear()
        self._call("write", key, lambda: fs.pipe_file(path, body))

    def _stream_upload(self, path: str, first: bytearray, rest: Iterator[Buffer]) -> None:
        """A multipart upload that is completed only if every chunk arrives."""
        f = self.fs.open(path, "wb", block_size=self.part_size)
        try:
            f.write(first)
            first.clear()
            for chunk in rest:
                f.write(chunk)
        except BaseException:
            try:
                f.discard()  # aborts the multipart/resumable upload
            finally:
                # Marked closed so neither close() nor the finalizer completes the upload.
                f.closed = True
            raise
        f.close()

    def _write_via_rename(self, key: str, chunks: Iterable[Buffer]) -> None:
        path, fs = self.path_of(key), self.fs
        parent = path.rpartition("/")[0] or "/"
        temp = f"{parent}/{RESERVED_PREFIX}tmp-{uuid.uuid4().hex}"

        def write_temp() -> None:
            fs.makedirs(parent, exist_ok=True)
            with fs.open(temp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)

        try:
            # Not retried: the chunk iterator can be consumed only once.
            call_with_retries(write_temp, backend=self.describe(), action="write", key=key,
                              policy=_ONE_TRY)
            self._call("move into place", key, lambda: fs.mv(temp, path))
        except BaseException:
            # Best effort: the temp name is reserved, never listed, and `gc` removes leftovers.
            with contextlib.suppress(Exception):
                fs.rm_file(temp)
            raise

    def _exists(self, key: str) -> bool:
        return self._info(key) is not None

    def _delete(self, key: str) -> bool:
        if self._info(key) is None:
            return False
        path, fs = self.path_of(key), self.fs
        try:
            self._call("delete", key, lambda: fs.rm_file(path))
        except FileNotFoundError:
            return False  # deleted by someone else in between
        fs.invalidate_cache(path)
        return True

    def _list(self, prefix: str) -> Iterator[str]:
        folder = prefix.rpartition("/")[0]
        base = self.path_of(folder) if folder else self.root
        fs = self.fs
        fs.invalidate_cache(base)
        try:
            paths = self._call("list", prefix or "/", lambda: fs.find(base))
        except FileNotFoundError:
            return
        cut = len(self.root.rstrip("/")) + 1
        for path in paths:
            key = path[cut:]
            if key.startswith(prefix) and not hidden_from_listing(key, prefix):
                yield key

    def _version(self, key: str) -> str | None:
        info = self._info(key)
        if info is None:
            return None
        parts = [f"{name}={info[name]}" for name in _VERSION_FIELDS if info.get(name) is not None]
        return ";".join(parts)

    # -- multipart uploads (S3) --------------------------------------------------------------

    def _bucket_and_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.root.partition("/")
        return bucket, prefix + "/" if prefix else ""

    def _gcs_part_folders(self) -> list[IncompleteUpload]:
        """The part folders of GCS writes that never composed them (their writer died)."""
        base = f"{self.root}/{_PARTS_FOLDER}"
        fs = self.fs
        fs.invalidate_cache(base)
        try:
            found = self._call("list the parts under", _PARTS_FOLDER, lambda: fs.find(base, detail=True))
        except FileNotFoundError:
            return []
        oldest: dict[str, datetime] = {}
        for name, info in found.items():
            folder = name[len(base) + 1:].partition("/")[0]
            created = info.get("timeCreated") or info.get("updated")
            when = (datetime.fromisoformat(created.replace("Z", "+00:00")) if isinstance(created, str)
                    else datetime.now(timezone.utc))
            oldest[folder] = min(when, oldest.get(folder, when))
        return [IncompleteUpload(f"{_PARTS_FOLDER}/{folder}", folder, when) for folder, when in oldest.items()]

    def incomplete_uploads(self) -> Sequence[IncompleteUpload]:
        """Uploads in progress under this storage's prefix: S3 multipart uploads, and the parts
        of GCS writes not yet composed (a SIGKILLed writer's leftovers, for ``resultkit gc``).

        GCS resumable sessions expire by themselves after a week and hold no listable parts.
        """
        if self.protocol in ("gs", "gcs"):
            return self._gcs_part_folders()
        if self.protocol not in ("s3", "s3a"):
            return []
        bucket, prefix = self._bucket_and_prefix()
        fs = self.fs
        found: list[IncompleteUpload] = []
        markers: dict[str, str] = {}
        while True:
            page = self._call("list multipart uploads under", prefix or "/", partial(
                fs.call_s3, "list_multipart_uploads", Bucket=bucket, Prefix=prefix, **markers))
            for upload in page.get("Uploads", []):
                found.append(IncompleteUpload(upload["Key"][len(prefix):], upload["UploadId"],
                                              upload["Initiated"]))
            if not page.get("IsTruncated"):
                return found
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def abort_upload(self, upload: IncompleteUpload) -> bool:
        """Abort an upload, freeing its parts; False if it had already ended."""
        if self.protocol in ("gs", "gcs") and upload.path == f"{_PARTS_FOLDER}/{upload.upload_id}":
            base, fs = f"{self.root}/{upload.path}", self.fs
            fs.invalidate_cache(base)
            try:
                self._call("delete the parts of", upload.path, lambda: fs.rm(base, recursive=True))
            except FileNotFoundError:
                return False
            return True
        if self.protocol not in ("s3", "s3a"):
            return False
        bucket, prefix = self._bucket_and_prefix()
        fs = self.fs
        try:
            self._call("abort the multipart upload of", upload.path, lambda: fs.call_s3(
                "abort_multipart_upload", Bucket=bucket, Key=prefix + upload.path, UploadId=upload.upload_id))
        except (FileNotFoundError, StorageError) as exc:
            if isinstance(exc, FileNotFoundError) or "NoSuchUpload" in str(exc):
                return False
            raise
        return True
