"""The input hasher: a canonical, type-tagged encoding of Python values streamed into xxh3_128.

Equal values give equal digests in every process, machine and run: nothing here uses
``hash()``, ``id()`` in the output, ``repr()`` with addresses, or dict/set iteration
order. Every value is written as a one-byte type tag followed by its content, so
``(1, 2)``, ``[1, 2]``, ``1``, ``1.0`` and ``True`` all differ. Buffers (bytes,
memoryview, numpy arrays, pandas columns) are fed to the hash in place.

>>> hash_value({"b": 1, "a": [1, 2]}) == hash_value({"a": [1, 2], "b": 1})
True
>>> hash_value((1, 2)) == hash_value([1, 2])
False
"""

from __future__ import annotations

import array
import dataclasses
import datetime as dt
import enum
import functools
import io
import socket
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

import xxhash

from ..errors import HashError
from ._builtins import BUILTIN_BASES, EXACT_ENCODERS, pack_float, pack_len
from ._encoding import _class_identity, _type_name, _Unhashable

__all__ = ["Hasher", "code_digest", "hash_value"]

_pack_len = pack_len
_pack_float = pack_float

# Lists and tuples at least this long try the packed path for floats, ints and strs.
_BULK_MIN = 16

# Types with no stable value: hashing them would silently key on identity or on
# state that changes under the user's feet.
_REFUSED: tuple[type, ...] = (
    io.IOBase,
    socket.socket,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    types.FrameType,
    types.TracebackType,
)


class Hasher:
    """Streams values into one xxh3_128 digest.

    >>> h = Hasher()
    >>> h.update([1, "a"])
    >>> len(h.hexdigest())
    32
    """

    def __init__(self) -> None:
        self._state = xxhash.xxh3_128()
        self._update: Callable[[Any], None] = self._state.update
        # id() of each container being encoded -> its nesting index, to encode cycles
        # as back-references. Only indices reach the hash, never ids.
        self._active: dict[int, int] = {}

    def update(self, obj: Any, *, name: str | None = None) -> None:
        """Add ``obj`` to the digest; ``name`` (the argument's name) is used in error messages."""
        try:
            self._encode(obj)
        except _Unhashable as err:
            raise _hash_error(obj, name, err) from None
        except RecursionError:
            label = f"argument {name!r}" if name else "value"
            raise HashError(
                f"cannot hash {label} of type {_type_name(type(obj))}: it is nested too deeply; "
                + _FIXES.format(name=name or "name")
            ) from None

    def digest(self) -> bytes:
        """The 16-byte digest of everything added so far."""
        return bytes(self._state.digest())

    def hexdigest(self) -> str:
        """The digest as 32 lowercase hex characters."""
        return str(self._state.hexdigest())

    # -- encoding ---------------------------------------------------------------------

    def _write(self, tag: bytes, payload: bytes) -> None:
        update = self._update
        update(tag)
        update(_pack_len(len(payload)))
        update(payload)

    def _encode(self, obj: Any) -> None:
        encoder = EXACT_ENCODERS.get(type(obj))
        if encoder is not None:
            encoder(self, obj)
        else:
            self._encode_other(obj)

    def _sub_digest(self, *values: Any) -> bytes:
        """Digest of ``values`` encoded apart from the main stream (for order-independent combining)."""
        saved_state, saved_update = self._state, self._update
        self._state = xxhash.xxh3_128()
        self._update = self._state.update
        try:
            for value in values:
                self._encode(value)
            return bytes(self._state.digest())
        finally:
            self._state, self._update = saved_state, saved_update

    def _enter(self, obj: Any) -> bool:
        """Mark ``obj`` as being encoded; if it already is (a cycle), write a back-reference."""
        index = self._active.get(id(obj))
        if index is not None:
            self._update(b"R")
            self._update(_pack_len(index))
            return False
        self._active[id(obj)] = len(self._active)
        return True

    def _leave(self, obj: Any) -> None:
        del self._active[id(obj)]

    def _encode_sequence(self, tag: bytes, items: Any) -> None:
        if not self._enter(items):
            return
        self._update(tag)
        self._update(_pack_len(len(items)))
        try:
            if len(items) >= _BULK_MIN and self._encode_homogeneous(items):
                return
            for index, item in enumerate(items):
                try:
                    self._encode(item)
                except _Unhashable as err:
                    err.path.append(f"[{index}]")
                    raise
        finally:
            self._leave(items)

    def _encode_homogeneous(self, items: Any) -> bool:
        """Long runs of only floats, only ints or only strs, packed in C; False for anything else.

        Which path a sequence takes depends only on its element types, so equal
        sequences always take the same one.
        """
        kinds = set(map(type, items))
        if len(kinds) != 1:
            return False
        kind = kinds.pop()
        if kind is float or kind is int:
            try:
                packed = array.array("d" if kind is float else "q", items)
            except OverflowError:  # ints beyond 64 bits: element by element
                return False
            if sys.byteorder == "big":
                packed.byteswap()  # keys are the same on every machine
            self._update(b"#f" if kind is float else b"#i")
            self._update(packed)
            return True
        if kind is str:
            encoded = "\x00".join(items).encode("utf-8", "surrogatepass")
            if encoded.count(b"\x00") != len(items) - 1:
                return False  # an element holds NUL: the separators would be ambiguous
            self._update(b"#s")
            self._update(_pack_len(len(encoded)))
            self._update(encoded)
            return True
        return False

    def _encode_unordered(self, tag: bytes, items: Iterable[Any], count: int, owner: Any) -> None:
        if not self._enter(owner):
            return
        try:
            digests = sorted(self._sub_digest(item) for item in items)
        except _Unhashable as err:
            err.path.append("{...}")
            raise
        finally:
            self._leave(owner)
        self._update(tag)
        self._update(_pack_len(count))
        self._update(b"".join(digests))

    def _encode_mapping(self, tag: bytes, mapping: Any) -> None:
        if not self._enter(mapping):
            return
        digests = []
        try:
            for key, value in mapping.items():
                try:
                    digests.append(self._sub_digest(key, value))
                except _Unhashable as err:
                    err.path.append(f"[{key!r}]")
                    raise
        finally:
            self._leave(mapping)
        digests.sort()
        self._update(tag)
        self._update(_pack_len(len(digests)))
        self._update(b"".join(digests))

    def _encode_fields(self, tag: bytes, owner: Any, fields: Iterable[tuple[str, Any]]) -> None:
        """Class identity plus named fields, order-independent (for objects and records)."""
        if not self._enter(owner):
            return
        digests = []
        try:
            for field_name, value in fields:
                try:
                    digests.append(self._sub_digest(field_name, value))
                except _Unhashable as err:
                    err.path.append(f".{field_name}")
                    raise
        finally:
            self._leave(owner)
        digests.sort()
        self._write(tag, _class_identity(type(owner)))
        self._update(_pack_len(len(digests)))
        self._update(b"".join(digests))

    def _encode_str(self, text: str) -> None:
        # surrogatepass: lone surrogates are valid Python str values and must hash, not raise.
        self._write(b"s", text.encode("utf-8", "surrogatepass"))

    def _encode_int(self, number: int) -> None:
        self._write(b"i", number.to_bytes((number.bit_length() + 8) // 8, "little", signed=True))

    def _encode_buffer(self, tag: bytes, data: Any) -> None:
        view = memoryview(data)
        update = self._update
        update(tag)
        if view.ndim != 1 or view.format != "B":
            update(view.format.encode())
            update(_pack_len(view.ndim))
            for extent in view.shape or ():
                update(_pack_len(extent))
        update(_pack_len(view.nbytes))
        # Contiguous buffers are hashed in place; strided views need one compacting copy.
        update(view if view.c_contiguous else view.tobytes())

    def _encode_other(self, obj: Any) -> None:
        cls = type(obj)
        package = (cls.__module__ or "").partition(".")[0]
        if isinstance(obj, enum.Enum):
            self._write(b"E", _class_identity(cls))
            self._encode_str(obj.name)
        elif package == "numpy":
            from . import _numpy

            _numpy.encode_numpy(self, obj)
        elif package == "pandas":
            from . import _pandas

            _pandas.encode_pandas(self, obj)
        elif isinstance(obj, type):
            self._write(b"C", _class_identity(obj))
        elif isinstance(obj, tuple) and hasattr(cls, "_fields"):
            self._encode_fields(b"n", obj, zip(cls._fields, obj, strict=True))
        elif dataclasses.is_dataclass(obj):
            self._encode_fields(
                b"O", obj, ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
            )
        elif hasattr(cls, "__pydantic_fields__") and callable(getattr(obj, "model_dump", None)):
            self._encode_fields(b"O", obj, obj.model_dump(mode="python").items())
        elif hasattr(cls, "__attrs_attrs__"):
            self._encode_fields(b"O", obj, ((a.name, getattr(obj, a.name)) for a in cls.__attrs_attrs__))
        elif isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            self._encode_function(obj)
        elif isinstance(obj, functools.partial):
            self._write(b"Q", _class_identity(cls))
            self._encode_sequence(b"(", (obj.func, obj.args, obj.keywords))
        elif isinstance(obj, dt.tzinfo):
            self._write(b"z", _class_identity(cls) + b"|" + str(obj).encode())
        elif isinstance(obj, types.MethodType):
            self._update(b"M")
            self._encode_function(obj.__func__)
            self._encode(obj.__self__)
        elif isinstance(obj, types.ModuleType):
            self._write(b"m", obj.__name__.encode())
        elif isinstance(obj, BaseException):
            # args live outside __dict__: ValueError("a") and ValueError("b") must differ.
            self._encode_fields(b"O", obj, [("args", obj.args), *vars(obj).items()])
        elif isinstance(obj, _REFUSED):
            raise _Unhashable(obj, "it is a live resource (file, socket, generator or frame) with no stable value")
        elif isinstance(obj, BUILTIN_BASES):
            self._encode_builtin_subclass(obj)
        else:
            self._encode_plain_object(obj)

    def _encode_function(self, fn: Any) -> None:
        qualname = getattr(fn, "__qualname__", fn.__name__)
        self._write(b"P", f"{fn.__module__}:{qualname}".encode())
        bound_to = getattr(fn, "__self__", None)
        if bound_to is not None and not isinstance(bound_to, types.ModuleType):
            self._encode(bound_to)  # a bound builtin method such as [1].append
        code = getattr(fn, "__code__", None)
        if "<" in qualname and isinstance(code, types.CodeType):
            # Lambdas and local functions share qualnames: tell them apart by their code,
            # defaults and captured values (make_adder(1) and make_adder(2) differ).
            self._write(b"p", code_digest(code).encode())
            cells = tuple(cell.cell_contents for cell in fn.__closure__ or ())
            self._encode_sequence(b"(", (fn.__defaults__, fn.__kwdefaults__, cells))

    def _encode_builtin_subclass(self, obj: Any) -> None:
        cls = type(obj)
        self._write(b"X", _class_identity(cls))
        base = next(b for b in cls.__mro__ if b in EXACT_ENCODERS)
        EXACT_ENCODERS[base](self, obj)
        state = getattr(obj, "__dict__", None)
        if state:
            self._encode_mapping(b"d", state)

    def _encode_plain_object(self, obj: Any) -> None:
        cls = type(obj)
        if getattr(cls, "__getstate__", _DEFAULT_GETSTATE) is not _DEFAULT_GETSTATE:
            # The class says what its state is (often: everything but a lock or a cache).
            try:
                state = obj.__getstate__()
            except Exception as exc:  # e.g. "cannot pickle '_thread.lock' object"
                raise _Unhashable(obj, f"its __getstate__() failed ({exc})") from None
            if self._enter(obj):
                try:
                    self._write(b"G", _class_identity(cls))
                    self._encode(state)
                except _Unhashable as err:
                    err.path.append(".__getstate__()")
                    raise
                finally:
                    self._leave(obj)
            return
        state = getattr(obj, "__dict__", None)
        slot_names = [slot for klass in cls.__mro__ for slot in _own_slots(klass)]
        if state is None and not slot_names:
            raise _Unhashable(obj, "it has no __dict__ or __slots__ state to hash (a lock, connection or C object?)")
        fields: list[tuple[str, Any]] = list(state.items()) if isinstance(state, dict) else []
        for slot in slot_names:
            try:
                fields.append((slot, getattr(obj, slot)))
            except AttributeError:
                continue  # an unset slot is part of the state: it is simply absent
        self._encode_fields(b"O", obj, fields)


_DEFAULT_GETSTATE = getattr(object, "__getstate__", None)  # Python >= 3.11 has a default


def _own_slots(klass: type) -> tuple[str, ...]:
    slots = klass.__dict__.get("__slots__", ())
    names = (slots,) if isinstance(slots, str) else tuple(slots)
    return tuple(name for name in names if name not in ("__dict__", "__weakref__"))


_FIXES = (
    "exclude it with cache_policy=Inputs(exclude=[{name!r}]) or INPUTS - {name!r}, "
    "compute the key yourself with cache_key_fn=..., or disable caching for this task with "
    "cache_policy=NO_CACHE"
)


def _hash_error(obj: Any, name: str | None, err: _Unhashable) -> HashError:
    label = f"argument {name!r}" if name else "value"
    where = (name or "value") + "".join(reversed(err.path))
    found = "" if not err.path else f"; it contains a {err.offender_type} at {where}"
    return HashError(
        f"cannot hash {label} of type {_type_name(type(obj))}{found}: {err.reason}. "
        "Fix: " + _FIXES.format(name=name or "name")
    )


def hash_value(obj: Any, *, name: str | None = None) -> str:
    """Return the 32-hex-character xxh3_128 digest of ``obj``'s canonical encoding.

    ``name`` is the argument's name, used in the :class:`HashError` raised for
    values that cannot be hashed.

    >>> hash_value(1) != hash_value(1.0) != hash_value(True)
    True
    """
    cls = type(obj)
    # Fast paths for the commonest small arguments: the one-shot digest of exactly the
    # bytes the streaming encoder would write (xxh3 streaming equals one-shot). Digests of
    # small ints and short strs are remembered: a warm hit hashes the same arguments again.
    if cls is int:
        digest = _int_digests.get(obj)
        if digest is not None:
            return digest
        if -_INT_LIMIT < obj < _INT_LIMIT:
            data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
            digest = _one_shot(_INT_HEADS[len(data)] + data)
            if len(_int_digests) >= _MEMO_SIZE:
                _int_digests.clear()
            _int_digests[obj] = digest
            return digest
    elif cls is str:
        digest = _str_digests.get(obj)
        if digest is not None:
            return digest
        if len(obj) <= _ONE_SHOT_TEXT:
            data = obj.encode("utf-8", "surrogatepass")
            digest = _one_shot(b"s" + _pack_len(len(data)) + data)
            if len(obj) <= _MEMO_TEXT:
                if len(_str_digests) >= _MEMO_SIZE:
                    _str_digests.clear()
                _str_digests[obj] = digest
            return digest
    elif cls is float:
        return _one_shot(b"f" + _pack_float(obj))
    hasher = Hasher()
    hasher.update(obj, name=name)
    return hasher.hexdigest()


_one_shot: Callable[[bytes], str] = xxhash.xxh3_128_hexdigest
_ONE_SHOT_TEXT = 4096
_INT_LIMIT = 1 << 62
# An int below _INT_LIMIT takes at most 8 bytes: its tag and length prefix, by length.
_INT_HEADS = tuple(b"i" + _pack_len(size) for size in range(9))
# Remembered digests (exact type int or str only, so 1, 1.0 and True never share one).
_MEMO_SIZE = 4096
_MEMO_TEXT = 256
_int_digests: dict[int, str] = {}
_str_digests: dict[str, str] = {}


def code_digest(code: types.CodeType) -> str:
    """Digest of a code object, stable across processes of one Python version.

    Covers the bytecode, constants (nested code objects recursively), names and
    variable names; never ``hash()`` or addresses.
    """
    hasher = Hasher()
    hasher.update(_code_state(code))
    return hasher.hexdigest()


def _code_state(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_code_state(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return (code.co_name, code.co_argcount, code.co_code, consts, code.co_names, code.co_varnames)
