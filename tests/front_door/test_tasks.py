"""@task through the public API: caching, persistence, options, State, hooks, methods, async."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import pickle
from datetime import timedelta
from pathlib import Path

import pytest

import resultkit
from resultkit import ConfigurationError, State, StorageError, settings, task
from resultkit.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from resultkit.results import ResultStore
from resultkit.storage import MemoryStorage


def records(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_spec_example_runs_then_hits_then_runs_on_new_inputs(tmp_path):
    calls = []

    @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(days=1),
          result_storage=str(tmp_path), result_serializer="pickle")
    def train(data_path: str, alpha: float = 0.1) -> dict:
        calls.append((data_path, alpha))
        return {"path": data_path, "alpha": alpha}

    assert train("raw/2026-11.parquet") == {"path": "raw/2026-11.parquet", "alpha": 0.1}
    assert train("raw/2026-11.parquet") == {"path": "raw/2026-11.parquet", "alpha": 0.1}
    assert train(data_path="raw/2026-11.parquet", alpha=0.1)["alpha"] == 0.1  # same bound inputs
    assert train("raw/2026-11.parquet", alpha=1)["alpha"] == 1
    assert calls == [("raw/2026-11.parquet", 0.1), ("raw/2026-11.parquet", 1)]
    assert len(records(tmp_path)) == 2


def test_hit_is_served_from_storage_by_a_fresh_task_object(tmp_path):
    calls = []

    def body(x):
        calls.append(x)
        return [x]

    first = task(cache_policy=INPUTS, result_storage=str(tmp_path), name="shared.body")(body)
    second = task(cache_policy=INPUTS, result_storage=str(tmp_path), name="shared.body",
                  cache_result_in_memory=False)(body)
    assert first(3) == [3]
    state = second(3, return_state=True)
    assert state.name == "Cached" and state.result() == [3] and calls == [3]


def test_two_tasks_with_equal_inputs_never_share_a_record(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def double(x):
        return 2 * x

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def triple(x):
        return 3 * x

    assert double(5) == 10 and triple(5) == 15
    assert double(5) == 10 and triple(5) == 15
    assert len(records(tmp_path)) == 2


def test_default_policy_outside_a_flow_never_hits_across_calls(tmp_path):
    calls = []

    @task(result_storage=str(tmp_path))  # DEFAULT includes RUN_ID: the call's own id here
    def f(x):
        calls.append(x)
        return x

    f(1), f(1)
    assert calls == [1, 1]


def test_task_keeps_metadata_and_fn():
    def original(a: int, b: str = "x") -> str:
        """Docstring."""
        return b * a

    t = task(original)
    assert t.fn is original and t.__name__ == "original" and t.__doc__ == "Docstring."
    assert inspect.signature(t) == inspect.signature(original)
    assert t(2) == "xx"
    assert isinstance(t, resultkit.Task)


# -- persistence inference --------------------------------------------------------------

@pytest.mark.parametrize("option", [
    {"cache_policy": INPUTS}, {"cache_key_fn": lambda ctx, params: "fixed-key"},
    {"result_serializer": "pickle"}, {"result_storage_key": "k-{parameters[x]}"},
])
def test_setting_a_persistence_option_makes_the_task_persist(resultkit_home, option):
    @task(**option)
    def f(x):
        return x + 1

    state = f(1, return_state=True)
    assert state.reference is not None and state.reference.get() == 2
    assert records(resultkit_home / "storage")


def test_result_storage_alone_makes_the_task_persist(tmp_path):
    @task(result_storage=str(tmp_path))
    def f(x):
        return x

    assert f(1, return_state=True).reference.get() == 1


def test_a_task_that_does_not_persist_does_no_storage_io(resultkit_home):
    @task
    def f(x):
        return {"x": x}

    state = f(1, return_state=True)
    assert state.name == "Completed" and state.result() == {"x": 1} and state.reference is None
    assert not (resultkit_home / "storage").exists()


def test_persistence_comes_from_settings_then_environment(resultkit_home, monkeypatch):
    @task(cache_policy=NO_CACHE)  # NO_CACHE is a policy, so it implies persistence...
    def implied(x):
        return x

    @task
    def plain(x):
        return x

    assert implied(1, return_state=True).reference is not None
    assert plain(1, return_state=True).reference is None
    with settings(persist_result=True):
        assert plain(1, return_state=True).reference is not None
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")
    assert plain(1, return_state=True).reference is not None
    with settings(persist_result=False):  # the block beats the environment
        assert plain(1, return_state=True).reference is None


def test_persist_false_with_a_cache_policy_is_refused_at_decoration():
    with pytest.raises(ConfigurationError, match=r"persist_result=False.*cache policy"):
        @task(persist_result=False, cache_policy=INPUTS)
        def f(x):
            return x

    @task(persist_result=False, cache_policy=NO_CACHE)
    def g(x):
        return x

    assert g(1) == 1


# -- option validation ------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    ({"retries": -1}, "retries must be an int >= 0"),
    ({"retries": "3"}, "retries must be an int"),
    ({"retry_delay_seconds": -2}, "retry_delay_seconds"),
    ({"cache_expiration": 60}, "cache_expiration must be a positive datetime.timedelta"),
    ({"cache_expiration": timedelta(0)}, "cache_expiration"),
    ({"cache_policy": "inputs"}, "cache_policy must be a CachePolicy"),
    ({"cache_key_fn": "key"}, "cache_key_fn must be a callable"),
    ({"refresh_cache": "yes"}, "refresh_cache must be True, False or None"),
    ({"persist_result": 1}, "persist_result must be True, False or None"),
    ({"result_storage": 42}, "result_storage must be a Storage, a path, a URL"),
    ({"result_serializer": "yaml"}, "unknown serializer name 'yaml'"),
    ({"result_storage_key": "{nope}"}, "unknown field {nope}"),
    ({"name": ""}, "name must be a non-empty str"),
    ({"colour": "red"}, "unknown task option.*'colour'.*valid options are"),
])
def test_bad_options_raise_configuration_error_naming_them(options, message):
    with pytest.raises(ConfigurationError, match=message):
        @task(**options)
        def f(x):
            return x


def test_generators_are_refused_clearly():
    with pytest.raises(ConfigurationError, match=r"generator function '.*gen'.*return a list"):
        @task
        def gen():
            yield 1

    with pytest.raises(ConfigurationError, match="generator"):
        @task
        async def agen():
            yield 1


def test_cache_key_fn_wins_over_cache_policy_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="cache_key_fn wins"):
        @task(cache_policy=INPUTS, cache_key_fn=lambda ctx, params: "always-the-same",
              result_storage=str(tmp_path))
        def f(x):
            return x

    assert f(1) == 1 and f(2) == 1  # one key for every input
    assert records(tmp_path) == ["always-the-same"]


def test_cache_key_fn_keys_are_shared_on_purpose_and_none_means_no_cache(tmp_path):
    calls = []

    def key_fn(ctx, params):
        return None if params["x"] < 0 else f"users/{params['x']}"

    @task(cache_key_fn=key_fn, result_storage=str(tmp_path))
    def load(x):
        calls.append(x)
        return x

    @task(cache_key_fn=key_fn, result_storage=str(tmp_path))
    def load_again(x):
        calls.append(("again", x))
        return -x

    assert load(7) == 7 and load_again(7) == 7  # same key, deliberately shared
    assert load(-1) == -1 and load(-1) == -1
    assert calls == [7, -1, -1]


@pytest.mark.parametrize("bad", ["/abs/key", "a/../b", "a//b", "a?b", ".rk-tmp/x"])
def test_a_cache_key_fn_key_unusable_as_a_storage_key_raises_naming_key_and_function(tmp_path, bad):
    def report_key(ctx, params):
        return bad

    calls = []

    @task(cache_key_fn=report_key, result_storage=str(tmp_path))
    def report(x):
        calls.append(x)
        return x

    with pytest.raises(ConfigurationError) as info:
        report(1)
    assert repr(bad) in str(info.value) and "report_key" in str(info.value)
    assert calls == [] and records(tmp_path) == []  # refused before the body ran or storage was touched


def test_a_custom_policy_key_unusable_as_a_storage_key_names_the_policy(tmp_path):
    from resultkit.cache_policies import CachePolicy

    class Slashed(CachePolicy):
        def compute_key(self, task_ctx=None, inputs=None, flow_parameters=None, **kwargs):
            return "a//b"

    @task(cache_policy=Slashed(), result_storage=str(tmp_path))
    def f(x):
        return x

    with pytest.raises(ConfigurationError, match=r"Slashed\.compute_key returned 'a//b'"):
        f(1)


# -- State, retries, refresh, expiration --------------------------------------------------

def test_return_state_for_completed_cached_and_failed(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        if x < 0:
            raise ValueError(f"negative {x}")
        return x * 10

    completed = f(1, return_state=True)
    cached = f(1, return_state=True)
    failed = f(-1, return_state=True)
    assert isinstance(completed, State)
    assert (completed.name, completed.is_completed(), completed.is_failed()) == ("Completed", True, False)
    assert (cached.name, cached.is_completed(), cached.result()) == ("Cached", True, 10)
    assert cached.cache_key == completed.cache_key and len(cached.cache_key) >= 32
    assert completed.reference.get() == 10
    assert failed.name == "Failed" and failed.is_failed()
    with pytest.raises(ValueError, match="negative -1"):
        failed.result()
    with pytest.raises(ValueError, match="negative -1"):
        f(-1)


def test_a_failing_call_never_writes_under_its_key(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def boom(x):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        boom(1)
    assert records(tmp_path) == []


def test_retries_rerun_the_body_until_it_succeeds(tmp_path):
    attempts = []

    @task(retries=2, retry_delay_seconds=0, cache_policy=INPUTS, result_storage=str(tmp_path))
    def flaky(x):
        attempts.append(x)
        if len(attempts) < 3:
            raise ConnectionError("transient")
        return "ok"

    assert flaky(1) == "ok" and len(attempts) == 3

    @task(retries=1, retry_delay_seconds=[0])
    def always_fails():
        attempts.append("fail")
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        always_fails()
    assert attempts.count("fail") == 2


def test_refresh_cache_reruns_and_overwrites(tmp_path, monkeypatch):
    counter = iter(range(100))

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        return next(counter)

    assert f(1) == 0 and f(1) == 0
    assert f.with_options(refresh_cache=True)(1) == 1
    assert f(1) == 1  # the refreshed value overwrote the record
    with settings(refresh_cache=True):
        assert f(1) == 2
    monkeypatch.setenv("RESULTKIT_REFRESH_CACHE", "1")
    assert f(1) == 3
    assert f.with_options(refresh_cache=False)(1) == 3  # the task option beats the environment


def test_disable_caching_skips_lookup_and_write(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTKIT_DISABLE_CACHING", "true")
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        calls.append(x)
        return x

    f(1), f(1)
    assert calls == [1, 1] and records(tmp_path) == []


def test_expired_records_are_misses_and_live_ones_hit(tmp_path):
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_expiration=timedelta(microseconds=1))
    def short(x):
        calls.append(("short", x))
        return x

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_expiration=timedelta(hours=1))
    def long(x):
        calls.append(("long", x))
        return x

    short(1), short(1), long(1), long(1)
    assert calls == [("short", 1), ("short", 1), ("long", 1)]
    metadata = ResultStore(str(tmp_path)).metadata(long(1, return_state=True).cache_key)
    assert timedelta(minutes=59) < metadata.expiration - metadata.created <= timedelta(hours=1)


def test_memory_tier_honours_a_record_deleted_from_storage(tmp_path):
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_result_in_memory=True)
    def f(x):
        calls.append(x)
        return x

    key = f(1, return_state=True).cache_key
    f(1)
    assert calls == [1]
    (tmp_path / key).unlink()
    assert f(1, return_state=True).name == "Completed" and calls == [1, 1]


def test_memory_tier_sees_a_record_overwritten_by_another_writer(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path), name="overwritten")
    def f(x):
        return "original"

    key = f(1, return_state=True).cache_key
    assert f(1) == "original"
    ResultStore(str(tmp_path)).write(key, "replaced")
    assert f(1) == "replaced"


def test_result_storage_key_templates_name_the_record(tmp_path):
    @task(result_storage=str(tmp_path), result_storage_key="{task_name}/{parameters[user]}-{parameters[n]}.pkl")
    def fetch(user, n=3):
        return [user] * n

    state = fetch("ada", return_state=True)
    assert state.cache_key == "fetch/ada-3.pkl"
    assert records(tmp_path) == ["fetch/ada-3.pkl"]
    assert fetch("ada", return_state=True).name == "Cached"  # the key is the cache key


def test_result_storage_key_that_is_not_a_safe_key_is_refused(tmp_path):
    @task(result_storage=str(tmp_path), result_storage_key="../{parameters[x]}")
    def f(x):
        return x

    with pytest.raises(StorageError, match=r"'\.\.'"):
        f(1)


def test_commit_failure_raises_storage_error_carrying_the_value():
    class ReadOnlyStorage(MemoryStorage):
        def _write_chunks(self, key, chunks):
            raise StorageError(f"read-only storage refuses {key!r}")

    @task(cache_policy=INPUTS, result_storage=ReadOnlyStorage())
    def f(x):
        return {"computed": x}

    with pytest.raises(StorageError) as info:
        f(4)
    assert info.value.has_value and info.value.value == {"computed": 4}


def test_a_storage_fault_during_lookup_is_a_miss_with_a_warning(caplog):
    class UnreadableStorage(MemoryStorage):
        def _read(self, key):
            raise StorageError(f"disk on fire reading {key!r}")

        def _read_head(self, key, size):
            raise StorageError(f"disk on fire reading {key!r}")

        def _open_read(self, key):
            raise StorageError(f"disk on fire reading {key!r}")

    calls = []

    @task(cache_policy=INPUTS, result_storage=UnreadableStorage(), cache_result_in_memory=False)
    def f(x):
        calls.append(x)
        return x

    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert f(1) == 1 and f(1) == 1
    assert calls == [1, 1]
    assert "disk on fire" in caplog.text


def test_hits_and_misses_are_logged_at_info_with_parts_at_debug(tmp_path, caplog):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path), name="logged")
    def f(x):
        return x

    with caplog.at_level(logging.DEBUG, logger="resultkit"):
        key = f(1, return_state=True).cache_key
        f(1)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("cache miss: task logged") and key[:12] in m and str(tmp_path) in m
               for m in messages)
    assert any(m.startswith("cache hit: task logged") for m in messages)
    assert any("parts" in m and "'x'" in m for m in messages if "DEBUG")


# -- hooks, with_options, methods, async, pickling --------------------------------------

def test_on_commit_hooks_run_after_the_record_is_written(tmp_path):
    seen = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        return x

    @f.on_commit
    def committed(txn):
        seen.append(sorted(records(tmp_path)))

    f(1)
    f(1)  # a cached call runs no hooks
    assert len(seen) == 1 and len(seen[0]) == 1


def test_hook_must_be_callable():
    @task
    def f():
        return 1

    with pytest.raises(ConfigurationError, match="on_commit hook must be a callable"):
        f.on_commit("not a function")


def test_with_options_returns_a_configured_copy(tmp_path):
    @task(cache_policy=INPUTS)
    def f(x):
        return x

    g = f.with_options(result_storage=str(tmp_path), name="renamed")
    assert g is not f and g.name == "renamed" and f.name == "f"
    assert g(1) == 1 and records(tmp_path)
    with pytest.raises(ConfigurationError, match="retries"):
        f.with_options(retries=-5)


class Model:
    def __init__(self, scale):
        self.scale = scale
        self.calls = 0

    def __getstate__(self):  # `self` is an input: its key covers `scale`, not the counter
        return {"scale": self.scale}

    @task(cache_policy=INPUTS, result_storage_key="model-{parameters[self].scale}-{parameters[x]}")
    def predict(self, x):
        self.calls += 1
        return self.scale * x


def test_methods_bind_self_as_an_input(resultkit_home):
    small, big = Model(2), Model(10)
    assert small.predict(3) == 6 and small.predict(3) == 6 and big.predict(3) == 30
    assert small.calls == 1 and big.calls == 1
    assert Model.predict(small, 3) == 6
    assert small.predict(3, return_state=True).name == "Cached"


def test_method_keys_come_from_self_through_inputs(tmp_path):
    class Scaler:
        def __init__(self, k):
            self.k = k

        @task(cache_policy=INPUTS, result_storage=str(tmp_path))
        def apply(self, x):
            return self.k * x

    assert Scaler(2).apply(5) == 10
    assert Scaler(3).apply(5) == 15  # a different self is a different input
    assert Scaler(2).apply(5, return_state=True).name == "Cached"


def test_async_tasks_return_coroutines_and_cache(tmp_path):
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), retries=1)
    async def fetch(x):
        calls.append(x)
        if len(calls) == 1:
            raise ConnectionError("first attempt fails")
        await asyncio.sleep(0)
        return x * 2

    coro = fetch(4)
    assert inspect.iscoroutine(coro)
    assert asyncio.run(coro) == 8
    state = asyncio.run(fetch(4, return_state=True))
    assert state.name == "Cached" and state.result() == 8 and calls == [4, 4]


def test_tasks_pickle_with_and_without_cloudpickle(tmp_path):
    import cloudpickle

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        return x + 100

    assert f(1) == 101
    for copy in (pickle.loads(pickle.dumps(f)), cloudpickle.loads(cloudpickle.dumps(f))):
        assert copy.name == "f" and copy(1, return_state=True).name == "Cached"


def test_task_wraps_partials_and_callables():
    t = task(functools.partial(pow, 2), name="pow2")
    assert t(5) == 32


def test_an_unhashable_input_raises_hash_error_before_running(tmp_path):
    import threading

    from resultkit import HashError

    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def uses_lock(lock, x):
        calls.append(x)
        return x

    with pytest.raises(HashError, match="lock") as info:
        uses_lock(threading.Lock(), 1)
    assert "NO_CACHE" in str(info.value) and calls == []
    assert uses_lock.with_options(cache_policy=INPUTS - "lock")(threading.Lock(), 1) == 1
