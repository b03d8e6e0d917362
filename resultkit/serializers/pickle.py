"""Pickle serialization with protocol-5 out-of-band buffers written without copies.

Payload layout (offsets from the payload start)::

    frame header | pickle stream | pad | buffer 1 | pad | buffer 2 | ...

Each out-of-band buffer starts at a 64-byte-aligned offset so numpy arrays
rebuilt as views into the payload are aligned for SIMD code.
"""

from __future__ import annotations

import importlib
import io
import pickle
import struct
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

from .._types import as_byte_view
from ..errors import ConfigurationError, SerializationError
from ._hints import can_pickle
from ._pickle_reducers import fast_pickler_class
from .base import Buffer, Serializer

__all__ = ["PickleSerializer", "can_pickle"]

#: Libraries a record's config may make us import; anything else named by data is never imported.
TRUSTED_PICKLE_LIBRARIES = frozenset({"pickle", "cloudpickle", "dill"})

#: Libraries whose Pickler class takes the fast array reductions (a C pickler underneath).
_FAST_PICKLER_LIBRARIES = frozenset({"pickle", "cloudpickle"})

_MAGIC = b"RKP5"
_FRAME_VERSION = 1
# magic, frame version, pickle stream length, number of out-of-band buffers
_FRAME = struct.Struct("<4sB3xQQ")
_LENGTH = struct.Struct("<Q")
_ALIGNMENT = 64


def _padding(offset: int) -> int:
    return -offset % _ALIGNMENT


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _hint(obj: Any) -> str:
    """What to do about a value pickle refused: JSON only when JSON can hold the value."""
    from .json_types import encode_value

    try:
        encode_value(obj)
    except Exception:  # any failure means JSON is no way out either
        return (
            "Return plain data instead: leave open files, locks, sockets, connections, generators "
            "and clients out of the result (or give their class __reduce__), or set "
            "persist_result=False for this task"
        )
    return "JSONSerializer can store this value: use result_serializer='json'"


class PickleSerializer(Serializer):
    """Pickles values (cloudpickle, protocol 5); large buffers go out-of-band, uncopied.

    >>> s = PickleSerializer()
    >>> s.loads(s.dumps([1, "a"]))
    [1, 'a']
    """

    type: ClassVar[str] = "pickle"

    def __init__(self, picklelib: str = "cloudpickle", protocol: int = 5) -> None:
        if not isinstance(picklelib, str) or not picklelib:
            raise ConfigurationError(
                f"picklelib must be a module name such as 'cloudpickle', 'pickle' or 'dill', "
                f"got {type(picklelib).__name__} {picklelib!r}"
            )
        if isinstance(protocol, bool) or not isinstance(protocol, int) or not 0 <= protocol <= pickle.HIGHEST_PROTOCOL:
            raise ConfigurationError(
                f"protocol must be an int from 0 to {pickle.HIGHEST_PROTOCOL}, got {protocol!r}; "
                "use protocol=5 (the default) for zero-copy buffers"
            )
        self.picklelib = picklelib
        self.protocol = protocol
        self._module: ModuleType | None = _import_picklelib(picklelib)

    @classmethod
    def _from_options(cls, options: dict[str, Any]) -> Serializer:
        # A record's config is data: import only trusted libraries. Others are used only
        # when the reading process has already imported them; else the standard pickle
        # reads the bytes (cloudpickle's and most libraries' output is plain pickle).
        picklelib = options.get("picklelib", "cloudpickle")
        if not isinstance(picklelib, str) or picklelib in TRUSTED_PICKLE_LIBRARIES or picklelib in sys.modules:
            return cls(**options)
        unknown = set(options) - {"picklelib", "protocol"}
        if unknown:
            raise TypeError(f"unexpected options {sorted(unknown)}")
        # Validate the protocol through the constructor, with a library that is safe to import.
        reader = cls(picklelib="pickle", protocol=options.get("protocol", 5))
        reader.picklelib = picklelib
        reader._module = None
        return reader

    def __getstate__(self) -> dict[str, Any]:
        # Modules do not pickle: send the library's name, and whether it was imported at all
        # (one named by a record was not, and must not be imported by the receiver either).
        return {"picklelib": self.picklelib, "protocol": self.protocol, "imported": self._module is not None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.picklelib = state["picklelib"]
        self.protocol = state["protocol"]
        self._module = _import_picklelib(self.picklelib) if state["imported"] else None

    def to_config(self) -> dict[str, Any]:
        """``{"type": "pickle", "picklelib": ..., "protocol": ...}``."""
        return {"type": self.type, "picklelib": self.picklelib, "protocol": self.protocol}

    def dumps_chunks(self, obj: Any) -> Sequence[Buffer]:
        """``[frame header, pickle stream, pad, buffer, pad, buffer, ...]``; buffers are views."""
        module = self._module
        if module is None:
            raise SerializationError(
                f"{self!r} was rebuilt from a record naming the untrusted pickle library "
                f"{self.picklelib!r}, which was not imported; it can read but not write. Construct "
                f"PickleSerializer(picklelib={self.picklelib!r}) explicitly to write with it"
            )
        buffers: list[memoryview] = []

        def keep_out_of_band(buffer: pickle.PickleBuffer) -> bool:
            try:
                buffers.append(buffer.raw())
            except BufferError:
                return True  # non-contiguous: the pickler writes it in-band instead
            return False

        try:
            if self.protocol >= 5 and module.__name__ in _FAST_PICKLER_LIBRARIES:
                # Same output format as module.dumps, plus faster reductions for string and
                # datetime arrays (see _pickle_reducers); loads needs nothing special.
                with io.BytesIO() as file:
                    pickler = fast_pickler_class(module.Pickler)
                    pickler(file, protocol=self.protocol, buffer_callback=keep_out_of_band).dump(obj)
                    stream = file.getvalue()
            elif self.protocol >= 5:
                stream = module.dumps(obj, protocol=self.protocol, buffer_callback=keep_out_of_band)
            else:
                stream = module.dumps(obj, protocol=self.protocol)
        except Exception as exc:
            raise SerializationError(
                f"{self!r} cannot serialize a value of type {_type_name(obj)}: {exc}. {_hint(obj)}"
            ) from exc

        header = bytearray(_FRAME.pack(_MAGIC, _FRAME_VERSION, len(stream), len(buffers)))
        for buffer in buffers:
            header += _LENGTH.pack(buffer.nbytes)
        chunks: list[Buffer] = [bytes(header), stream]
        offset = len(header) + len(stream)
        for buffer in buffers:
            pad = _padding(offset)
            chunks.append(bytes(pad))
            chunks.append(buffer)
            offset += pad + buffer.nbytes
        return chunks

    def loads(self, data: Buffer) -> Any:
        """Unpickle; out-of-band buffers become views into ``data`` (writable for a bytearray)."""
        # The hit path passes a flat byte view already: no call to find that out.
        view = data if type(data) is memoryview and data.format == "B" and data.ndim == 1 else as_byte_view(data)
        if view[:4] != _MAGIC:
            return self._unpickle(view, None)
        try:
            _, version, stream_length, buffer_count = _FRAME.unpack_from(view)
            if not buffer_count and version == _FRAME_VERSION and _FRAME.size + stream_length == view.nbytes:
                return self._unpickle(view[_FRAME.size :], None)  # a small value: the stream alone
            if version != _FRAME_VERSION:
                raise ValueError(f"unsupported frame version {version}")
            offset = _FRAME.size
            lengths = [_LENGTH.unpack_from(view, offset + i * _LENGTH.size)[0] for i in range(buffer_count)]
            offset += buffer_count * _LENGTH.size
            stream = view[offset : offset + stream_length]
            offset += stream_length
            buffers = []
            for length in lengths:
                offset += _padding(offset)
                buffers.append(view[offset : offset + length])
                offset += length
            if offset != view.nbytes or len(stream) != stream_length:
                raise ValueError(f"frame describes {offset} bytes but the payload has {view.nbytes}")
        except (struct.error, ValueError) as exc:
            raise SerializationError(f"{self!r} cannot read the payload: malformed frame ({exc})") from exc
        return self._unpickle(stream, buffers)

    def _unpickle(self, stream: memoryview, buffers: list[memoryview] | None) -> Any:
        # dill needs its own loads (its types resolve through dill); the others are plain pickle.
        module = self._module
        load = module.loads if module is not None and module.__name__ == "dill" else pickle.loads
        try:
            if buffers is None:
                return load(stream)
            return load(stream, buffers=buffers)
        except Exception as exc:
            raise SerializationError(
                f"{self!r} cannot unpickle the payload ({type(exc).__name__}: {exc}); the record "
                "is corrupt or needs a module the reading process lacks"
            ) from exc


def _import_picklelib(name: str) -> ModuleType:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ConfigurationError(
            f"picklelib {name!r} is not importable ({exc}); install it or use "
            "picklelib='cloudpickle' (the default) or 'pickle'"
        ) from exc
    if not (callable(getattr(module, "dumps", None)) and callable(getattr(module, "loads", None))):
        raise ConfigurationError(
            f"picklelib {name!r} has no dumps()/loads(); use a pickle-compatible module such as "
            "'cloudpickle', 'pickle' or 'dill'"
        )
    return module
