"""``State``: what a task call ended as (``t(..., return_state=True)``)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

__all__ = ["State", "StateName"]

R = TypeVar("R")

StateName = Literal["Completed", "Cached", "Failed", "RolledBack"]

_UNREAD: Any = object()  # the value is in the record only (a flow with cache_result_in_memory=False)


class State(Generic[R]):
    """The outcome of one task call.

    >>> s = State("Completed", value=3)
    >>> s.is_completed(), s.result()
    (True, 3)
    """

    __slots__ = ("_reference", "_value", "cache_key", "exception", "name")

    def __init__(
        self,
        name: StateName,
        *,
        value: Any = None,
        exception: BaseException | None = None,
        cache_key: str | None = None,
        reference: Any = None,
        load_from_reference: bool = False,
    ) -> None:
        self.name: StateName = name
        # With load_from_reference the value is read from the record by result(), once.
        self._value = _UNREAD if load_from_reference else value
        self.exception = exception
        #: The key the value is (or would be) cached under; None when not cached.
        self.cache_key = cache_key
        # A ResultReference, or (store, key) to build one on first access: the hit path
        # should not pay for a handle most callers never look at.
        self._reference = reference

    @property
    def reference(self) -> Any:
        """A ``ResultReference`` to the stored record, or None when not persisted."""
        ref = self._reference
        if isinstance(ref, tuple):
            from .results import ResultReference

            store, key = ref
            ref = self._reference = ResultReference(store.storage, key, store.serializer)
        return ref

    @reference.setter
    def reference(self, value: Any) -> None:
        self._reference = value

    def is_completed(self) -> bool:
        """True for a value computed now or read from the cache."""
        return self.name in ("Completed", "Cached")

    def is_cached(self) -> bool:
        """True when the value came from a stored record and the body did not run."""
        return self.name == "Cached"

    def is_failed(self) -> bool:
        """True when the task raised."""
        return self.name == "Failed"

    def is_rolled_back(self) -> bool:
        """True when the enclosing transaction rolled back after this task staged its value."""
        return self.name == "RolledBack"

    def result(self) -> R:
        """The task's value, or raise the task's exception."""
        if self.exception is not None:
            raise self.exception
        if self._value is _UNREAD:
            self._value = self.reference.get()
        return self._value  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        key = f", cache_key={self.cache_key[:12]!r}" if self.cache_key else ""
        return f"State({self.name!r}{key})"
