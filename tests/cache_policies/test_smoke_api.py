"""The names the front door codes against exist and compute keys."""

from __future__ import annotations

from resultkit.cache_policies import DEFAULT, INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE, CacheKeyContext


def test_default_key_is_hex_128_bits_and_no_cache_gives_none() -> None:
    ctx = CacheKeyContext(task_name="m.f", task_source="def f(x): ...", call_id="c1")
    key = DEFAULT.compute_key(ctx, {"x": 1})
    assert key is not None and len(key) == 32 and int(key, 16) >= 0
    assert NO_CACHE.compute_key(ctx, {"x": 1}) is None
    assert (INPUTS + TASK_SOURCE + RUN_ID).compute_key(ctx, {"x": 1}) == key
