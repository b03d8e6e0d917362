"""Compression around another serializer, streamed over its chunks without joining them.

Decompression is bounded: a payload never decompresses to more than
``CompressedSerializer.max_expansion`` times its own size (32768 by default, the most
zstandard can reach, so no zstandard payload is refused), and a zstandard frame never to
more than the size its header declares. Output is produced in bounded steps and checked as
it goes, so a small hostile payload (a "zip bomb", or a frame claiming 1 GiB) fails with
``SerializationError`` having allocated at most the bound, never what it claims.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

from .._types import as_byte_view
from ..errors import ConfigurationError, SerializationError
from ._buffers import allocate_payload_buffer
from .base import Buffer, Serializer, resolve_serializer

__all__ = ["CompressedSerializer"]

# Above this many input bytes zstandard compresses on every core; below, threads cost more than they save.
_MULTITHREAD_THRESHOLD = 4 << 20
_COMPRESS_STEP = 1 << 20
_DECOMPRESS_STEP = 4 << 20
# Input bytes per step of an unsized zstandard frame: at most 4 MiB of output each.
_ZSTD_FEED = 128
_LEVELS: dict[str, tuple[int, int, int]] = {  # library -> (default, lowest, highest)
    "zstandard": (3, -(1 << 17), 22),
    "zlib": (6, 0, 9),
    "bz2": (9, 1, 9),
    "lzma": (6, 0, 9),
}


class _Compressor(Protocol):
    def compress(self, data: Buffer, /) -> bytes: ...
    def flush(self) -> bytes: ...


class _Decompressor(Protocol):
    def decompress(self, data: Buffer, /, max_length: int = ...) -> bytes: ...
    @property
    def eof(self) -> bool: ...


_STDLIB_CODECS: dict[str, tuple[Callable[[int], _Compressor], Callable[[], _Decompressor]]] = {
    "zlib": (lambda level: zlib.compressobj(level), zlib.decompressobj),
    "bz2": (bz2.BZ2Compressor, bz2.BZ2Decompressor),
    "lzma": (lambda level: lzma.LZMACompressor(preset=level), lzma.LZMADecompressor),
}


class CompressedSerializer(Serializer):
    """Compresses another serializer's output (zstandard level 3 by default).

    >>> s = CompressedSerializer("json", compressionlib="zlib")
    >>> s.loads(s.dumps({"a": [1, 2]}))
    {'a': [1, 2]}
    """

    type: ClassVar[str] = "compressed"
    #: A payload may decompress to at most this many times its compressed size (bz2, lzma
    #: and zlib have no size in their stream; zstandard's declared size must fit too).
    #: Lower it for stores that untrusted writers can reach; raise it only for bz2 data
    #: that legitimately compresses better.
    max_expansion: ClassVar[int] = 1 << 15

    def __init__(
        self,
        serializer: str | Serializer | dict[str, Any] = "pickle",
        compressionlib: str = "zstandard",
        level: int | None = None,
    ) -> None:
        if isinstance(serializer, dict):
            serializer = Serializer.from_config(serializer)
        self.serializer = resolve_serializer(serializer)
        if compressionlib not in _LEVELS:
            raise ConfigurationError(
                f"compressionlib must be one of {sorted(_LEVELS)}, got {compressionlib!r}"
            )
        _, lowest, highest = _LEVELS[compressionlib]
        if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not lowest <= level <= highest):
            raise ConfigurationError(
                f"level for {compressionlib} must be an int from {lowest} to {highest} or None "
                f"(the library default), got {level!r}"
            )
        if compressionlib == "zstandard":
            try:
                import zstandard  # noqa: F401
            except ImportError as exc:
                raise ConfigurationError(
                    "compressionlib='zstandard' needs the zstandard package: pip install zstandard, "
                    "or use compressionlib='zlib', 'bz2' or 'lzma'"
                ) from exc
        self.compressionlib = compressionlib
        self.level = level

    @classmethod
    def from_name(cls, inner: str | None = None) -> Serializer:
        """``"compressed"`` (pickle inside) or ``"compressed/<inner name>"``, e.g. ``"compressed/json"``."""
        if inner is not None and not inner:
            raise ConfigurationError(
                "serializer name 'compressed/' names no inner serializer; use e.g. 'compressed/json'"
            )
        return cls._from_options({"serializer": resolve_serializer(inner or "pickle").to_config()})

    def to_config(self) -> dict[str, Any]:
        """``{"type": "compressed", "serializer": {...inner config}, "compressionlib": ..., "level": ...}``."""
        return {
            "type": self.type,
            "serializer": self.serializer.to_config(),
            "compressionlib": self.compressionlib,
            "level": self.level,
        }

    @property
    def _level(self) -> int:
        return _LEVELS[self.compressionlib][0] if self.level is None else self.level

    def dumps_chunks(self, obj: Any) -> Sequence[Buffer]:
        """The compressed stream of the inner serializer's chunks, as a list of pieces."""
        chunks = self.serializer.dumps_chunks(obj)
        if self.compressionlib == "zstandard":
            return self._zstd_compress(chunks)
        make_compressor, _ = _STDLIB_CODECS[self.compressionlib]
        compressor = make_compressor(self._level)
        pieces = []
        for chunk in chunks:
            # Bounded slices keep the compressor's output buffer small (it grows by copying).
            view = as_byte_view(chunk)
            for start in range(0, view.nbytes, _COMPRESS_STEP):
                pieces.append(compressor.compress(view[start : start + _COMPRESS_STEP]))
        pieces.append(compressor.flush())
        return [piece for piece in pieces if piece]

    def _zstd_compress(self, chunks: Sequence[Buffer]) -> list[Buffer]:
        import zstandard

        total = sum(memoryview(chunk).nbytes for chunk in chunks)
        threads = -1 if total > _MULTITHREAD_THRESHOLD else 0
        compressor = zstandard.ZstdCompressor(level=self._level, threads=threads, write_content_size=True)
        # The content size in the frame header lets loads() decompress into one buffer.
        chunker = compressor.chunker(size=total, chunk_size=1 << 20)
        pieces: list[Buffer] = []
        for chunk in chunks:
            pieces.extend(chunker.compress(chunk))
        pieces.extend(chunker.finish())  # type: ignore[no-untyped-call]
        return pieces

    def loads(self, data: Buffer) -> Any:
        """Decompress into one writable buffer, then let the inner serializer read views of it."""
        limit = memoryview(data).nbytes * self.max_expansion
        try:
            if self.compressionlib == "zstandard":
                raw = _zstd_decompress(data, limit)
            else:
                _, make_decompressor = _STDLIB_CODECS[self.compressionlib]
                raw = _stream_decompress(make_decompressor(), data, limit)
        except SerializationError:
            raise
        except Exception as exc:  # zstd.ZstdError, zlib.error, lzma.LZMAError, OSError (bz2), ...
            raise SerializationError(
                f"{self!r} cannot decompress the payload ({type(exc).__name__}: {exc}); it is corrupt "
                "or was written with another compressionlib"
            ) from exc
        return self.serializer.loads(raw)


def _too_big(size: int, limit: int) -> SerializationError:
    return SerializationError(
        f"the compressed payload would decompress to more than {size} bytes, over its bound of "
        f"{limit} (CompressedSerializer.max_expansion = {CompressedSerializer.max_expansion} times "
        "its size); it is corrupt or hostile (raise max_expansion only for trusted data)"
    )


def _zstd_decompress(data: Buffer, limit: int) -> Buffer:
    import zstandard

    params = zstandard.get_frame_parameters(data)
    size = params.content_size
    if size <= 0 or size == zstandard.CONTENTSIZE_UNKNOWN:
        # Size not recorded (or empty). zstandard's decompressobj takes no max_length, so
        # it is fed small slices: each yields at most 32768 times its size, checked as it goes.
        unsized = zstandard.ZstdDecompressor().decompressobj()
        source = as_byte_view(data)
        grown = bytearray()
        for start in range(0, source.nbytes, _ZSTD_FEED):
            grown += unsized.decompress(source[start : start + _ZSTD_FEED])
            if len(grown) > limit:
                raise _too_big(len(grown), limit)
            if unsized.eof:
                break
        if not unsized.eof:
            raise SerializationError("the zstandard payload is truncated")
        return grown
    if size > limit:  # checked before anything is allocated
        raise _too_big(size, limit)
    # Untouched pages (for large sizes), filled only as the frame really decompresses.
    raw = allocate_payload_buffer(size)
    view = memoryview(raw)
    filled = 0
    with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=False) as reader:
        while filled < size:
            count = reader.readinto(view[filled:])
            if count == 0:
                break
            filled += count
        extra = reader.read(1)
    if filled != size or extra:
        raise SerializationError(
            f"zstandard frame declares {size} bytes but decompressed to {filled + len(extra)}; "
            "the payload is corrupt"
        )
    return raw


def _stream_decompress(decompressor: Any, data: Buffer, limit: int) -> bytearray:
    """Decompress all of ``data`` in bounded steps, failing once output would pass ``limit``."""
    raw = bytearray()
    pending: Buffer = data
    while True:
        # max_length bounds each step, so the output never runs more than one step past the limit.
        piece = decompressor.decompress(pending, min(_DECOMPRESS_STEP, limit - len(raw) + 1))
        raw += piece
        if len(raw) > limit:
            raise _too_big(len(raw), limit)
        # zlib hands back unread input; bz2 and lzma keep it and say whether they need more.
        pending = getattr(decompressor, "unconsumed_tail", b"")
        if decompressor.eof:
            break
        more_output = not getattr(decompressor, "needs_input", True)
        if not pending and not piece and not more_output:
            raise SerializationError("the compressed payload is truncated")
    if getattr(decompressor, "unused_data", b""):
        raise SerializationError("the compressed payload has trailing bytes after its end")
    return raw
