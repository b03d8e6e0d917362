"""What the hasher's encoders share: the stream they write to, class identity and the refusal.

``hashing.Hasher`` dispatches to the encoders (``_builtins``, ``_numpy``, ``_pandas``);
they see it only as an :class:`Encoder`, so none of them imports ``hashing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ["Encoder"]

# Object arrays are hashed in batches this long: small enough that the objects tolist()
# touches are still in cache when join() reads them (measured 2x faster than 65536).
_TEXT_BATCH = 1 << 12
# Non-contiguous arrays are copied to contiguous blocks of at most this many bytes.
_COPY_CHUNK_BYTES = 1 << 24


class Encoder(Protocol):
    """The hasher as an encoder writes to it (``hashing.Hasher``)."""

    _update: Callable[[Any], None]

    def _write(self, tag: bytes, payload: bytes) -> None: ...
    def _encode(self, obj: Any) -> None: ...
    def _encode_str(self, text: str) -> None: ...
    def _encode_int(self, number: int) -> None: ...
    def _encode_buffer(self, tag: bytes, data: Any) -> None: ...
    def _encode_sequence(self, tag: bytes, items: Any) -> None: ...
    def _encode_unordered(self, tag: bytes, items: Iterable[Any], count: int, owner: Any) -> None: ...
    def _encode_mapping(self, tag: bytes, mapping: Any) -> None: ...
    def _encode_plain_object(self, obj: Any) -> None: ...


class _Unhashable(Exception):
    """Raised deep inside the encoder; collects the path to the offending value on the way up."""

    def __init__(self, offender: Any, reason: str) -> None:
        super().__init__(reason)
        self.offender_type = _type_name(type(offender))
        self.reason = reason
        self.path: list[str] = []


def _type_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _class_identity(cls: type) -> bytes:
    # module + qualname is the same in every process, including for classes in __main__.
    return f"{cls.__module__}:{cls.__qualname__}".encode()
