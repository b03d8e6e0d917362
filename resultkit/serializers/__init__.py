"""resultkit.serializers: values <-> bytes, each described by a JSON-safe config.

>>> from resultkit.serializers import PickleSerializer, resolve_serializer
>>> resolve_serializer("pickle") == PickleSerializer()
True
"""

from __future__ import annotations

from .base import Serializer, register_serializer_type, resolve_serializer
from .pickle import PickleSerializer

__all__ = [
    "PickleSerializer",
    "Serializer",
    "register_serializer_type",
    "resolve_serializer",
]

for _name in ("PickleSerializer",):
    globals()[_name].__module__ = __name__
del _name
