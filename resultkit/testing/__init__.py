"""Conformance suites a backend of your own runs: subclass one, give it one fixture.

``pip install 'resultkit[testing]'`` (this package imports pytest; ``import resultkit``
never does). Each suite is a pytest class; a subclass named ``Test...`` is collected and
runs every test of the contract against your implementation::

    from resultkit.testing import StorageContract

    class TestDictStorage(StorageContract):
        @pytest.fixture
        def storage(self):
            return DictStorage()

- :class:`StorageContract`: reads, writes (atomic, chunked, streamed, failing), keys,
  listing, versions, pickling, saved configurations; fixture ``storage``.
- :class:`LockManagerContract` (Prefect's ``LockManager`` protocol) and
  :class:`LeasedLockManagerContract` (plus ``extend_lock``/``lock_holder``); fixture
  ``lock_manager``.
- :class:`SerializerContract` (round trips of the value kinds in ``values``, configs that
  rebuild, bad bytes refused, a record's config never importing what it names) and
  :class:`SafeSerializerContract` (plus: loading never runs code); fixture ``serializer``.
"""

from __future__ import annotations

from ._locks import LeasedLockManagerContract, LockManagerContract
from ._serializers import SafeSerializerContract, SerializerContract, assert_same
from ._storage import StorageContract

__all__ = [
    "LeasedLockManagerContract",
    "LockManagerContract",
    "SafeSerializerContract",
    "SerializerContract",
    "StorageContract",
    "assert_same",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
