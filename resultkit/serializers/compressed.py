"""Compression around another serializer, streamed over its chunks without joining them."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

from ..errors import ConfigurationError, SerializationError
from .base import Buffer, Serializer, resolve_serializer

__all__ = ["CompressedSerializer"]

# Above this many input bytes zstandard compresses on every core; below, threads cost more than they save.
_MULTITHREAD_THRESHOLD = 4 << 20
_COMPRESS_STEP = 1 << 20
_DECOMPRESS_STEP = 4 << 20
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
            view = memoryview(chunk).cast("B")
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
        try:
            if self.compressionlib == "zstandard":
                raw = _zstd_decompress(data)
            else:
                _, make_decompressor = _STDLIB_CODECS[self.compressionlib]
                raw = _stream_decompress(make_decompressor(), data)
        except SerializationError:
            raise
        except Exception as exc:  # zstd.ZstdError, zlib.error, lzma.LZMAError, OSError (bz2), ...
            raise SerializationError(
                f"{self!r} cannot decompress the payload ({type(exc).__name__}: {exc}); it is corrupt "
                "or was written with another compressionlib"
            ) from exc
        return self.serializer.loads(raw)


def _zstd_decompress(data: Buffer) -> bytearray:
    import zstandard

    params = zstandard.get_frame_parameters(data)
    size = params.content_size
    if size <= 0 or size == zstandard.CONTENTSIZE_UNKNOWN:
        # Size not recorded (or empty): grow a buffer as the stream decompresses.
        unsized = zstandard.ZstdDecompressor().decompressobj()
        raw = bytearray(unsized.decompress(data))
        if not unsized.eof:
            raise SerializationError("the zstandard payload is truncated")
        return raw
    raw = bytearray(size)
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


def _stream_decompress(decompressor: Any, data: Buffer) -> bytearray:
    """Decompress all of ``data`` with a stdlib (or zstd) decompressor object, in bounded steps."""
    raw = bytearray()
    pending: Buffer = data
    while True:
        # max_length bounds each step, so a small hostile payload cannot balloon memory at once.
        piece = decompressor.decompress(pending, _DECOMPRESS_STEP)
        raw += piece
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
