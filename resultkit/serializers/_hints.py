"""What a refused value's error suggests: whether another serializer could hold it.

Below both ``json_types`` (whose refusals suggest pickle) and ``pickle`` (whose refusals
suggest JSON), so neither imports the other to word its hint.
"""

from __future__ import annotations

from typing import Any

__all__ = ["can_pickle"]


def can_pickle(obj: Any) -> bool:
    """Whether the default ``PickleSerializer`` (cloudpickle) could store ``obj``; for error hints."""
    try:
        import cloudpickle

        cloudpickle.dumps(obj)
    except Exception:  # any failure: do not suggest pickle
        return False
    return True
