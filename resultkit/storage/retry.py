"""Bounded retries with exponential backoff for transient remote storage faults.

Transient: connection errors, timeouts, throttling and 5xx answers. Never retried:
a missing object, a permission problem, or anything else that would fail the same way
again. s3fs and gcsfs retry some faults themselves; this layer bounds the total and turns
what is left into a ``StorageError`` naming the backend, key and cause.
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import StorageError

__all__ = ["DEFAULT_RETRY", "ObjectChanged", "RetryPolicy", "call_with_retries", "is_replaced", "is_storage_fault",
           "is_transient"]

T = TypeVar("T")

_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EAGAIN", "EBUSY", "ECONNABORTED", "ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH",
                 "ENETDOWN", "ENETRESET", "ENETUNREACH", "EPIPE", "EREMOTEIO", "ETIMEDOUT")
    if hasattr(errno, name)
)
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Client-library exception names, matched by name so this module imports neither
# botocore nor aiohttp (both optional).
_TRANSIENT_NAMES = frozenset({
    "ClientConnectorError", "ClientOSError", "ClientPayloadError", "ConnectTimeoutError",
    "ConnectionClosedError", "EndpointConnectionError", "IncompleteRead", "ReadTimeoutError",
    "ResponseStreamingError", "ServerDisconnectedError", "ServerTimeoutError",
})
# Exceptions from these packages are storage faults even when they are not OSErrors
# (gcsfs's HttpError, botocore's ClientError...); anything else that is not an OSError
# (a failing chunk iterator, a bug) passes through unchanged.
_CLIENT_PACKAGES = frozenset({"aiobotocore", "aiohttp", "botocore", "diskcache", "fsspec", "gcsfs",
                              "google", "paramiko", "requests", "s3fs", "sqlite3", "urllib3"})
_PERMANENT = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
              NotADirectoryError)


class ObjectChanged(OSError):
    """An object was replaced or deleted between two reads of one load (never retried here:
    the caller reads it again from the start)."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is worth retrying."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _PERMANENT):
            return False
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        if isinstance(current, OSError) and current.errno in _TRANSIENT_ERRNOS:
            return True
        if type(current).__name__ in _TRANSIENT_NAMES:
            return True
        status = getattr(current, "code", None) or getattr(current, "status", None)
        if isinstance(status, int) and status in _TRANSIENT_STATUS:
            return True
        current = current.__cause__ or current.__context__
    return False


def _from_client_library(exc: BaseException) -> bool:
    return type(exc).__module__.partition(".")[0] in _CLIENT_PACKAGES


def is_storage_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage fault (an ``OSError`` or a storage client library's error), not a bug."""
    return isinstance(exc, OSError) or _from_client_library(exc)


def is_replaced(exc: BaseException) -> bool:
    """Whether ``exc`` (or a cause) says the object changed while it was read (s3fs's ``FileExpired``, a 412)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (isinstance(current, ObjectChanged) or type(current).__name__ == "FileExpired"
                or _http_status_of(current) == 412):
            return True
        current = current.__cause__ or current.__context__
    return False


def _http_status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "code", None) or getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # botocore's ClientError
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: ``attempts`` tries in all, delays doubling from
    ``base_delay`` up to ``max_delay`` seconds, each scaled by a random factor in [0.5, 1.5)
    so many clients do not retry in lockstep."""

    attempts: int = 4
    base_delay: float = 0.1
    max_delay: float = 2.0

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based)."""
        return min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1)) * random.uniform(0.5, 1.5)


DEFAULT_RETRY = RetryPolicy()


def call_with_retries(
    fn: Callable[[], T],
    *,
    backend: str,
    action: str,
    key: str,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> T:
    """Call ``fn()``, retrying transient faults; other failures become ``StorageError``.

    ``FileNotFoundError`` passes through unchanged (callers map it to "absent"), as do
    exceptions that are neither ``OSError`` nor from a storage client library (bugs, a
    failing chunk iterator).

    >>> call_with_retries(lambda: 42, backend="memory://", action="read", key="k")
    42
    """
    attempt = 1
    while True:
        try:
            return fn()
        except (FileNotFoundError, ObjectChanged):
            raise
        except Exception as exc:
            transient = is_transient(exc)
            if transient and attempt < policy.attempts:
                time.sleep(policy.delay(attempt))
                attempt += 1
                continue
            if not transient and not isinstance(exc, OSError) and not _from_client_library(exc):
                raise
            tries = f" after {attempt} attempts" if transient else ""
            hint = (
                "the service may be unavailable or throttling; try again later"
                if transient
                else "check the bucket/path exists and your credentials allow this"
            )
            raise StorageError(
                f"{backend}: could not {action} key {key!r}{tries}: {type(exc).__name__}: {exc}; {hint}"
            ) from exc
