"""resultkit.serializers: values <-> bytes, each described by a JSON-safe config.

>>> from resultkit.serializers import PickleSerializer, resolve_serializer
>>> resolve_serializer("pickle") == PickleSerializer()
True
"""

from __future__ import annotations

from .base import Serializer, register_serializer_type, resolve_serializer
from .compressed import CompressedSerializer
from .json import JSONSerializer
from .json_types import register_json_type
from .pickle import PickleSerializer

__all__ = [
    "CompressedSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "register_json_type",
    "register_serializer_type",
    "resolve_serializer",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
