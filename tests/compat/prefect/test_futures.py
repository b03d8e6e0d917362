"""Our answers to Prefect's tests/test_futures.py: futures of the thread runner and FutureList.

Prefect's tests wrap hand-made ``concurrent.futures.Future`` objects in its future class;
ours get their futures from ``t.submit`` with bodies held open or failing on purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from resultkit import ConfigurationError, task
from resultkit.futures import FutureList, TaskFuture, as_completed, wait

from ._cite import xfail_differs


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a held body behind


@task
def value(x: Any) -> Any:
    return x


@task
def fails(message: str) -> None:
    raise ValueError(message)


def held(gate: threading.Event) -> TaskFuture[int]:
    @task
    def hang() -> int:
        assert gate.wait(120)
        return 1

    return hang.submit()


@xfail_differs("**`future.state` waits for the call to finish**")
def test_wait_with_timeout(gate: threading.Event) -> None:
    """Prefect: tests/test_futures.py (TestPrefectConcurrentFuture)."""
    future = held(gate)
    future.wait(timeout=0.01)  # does not raise
    assert future.done() is False
    state: Any = future._state if future._state is not None else None
    assert state is not None and state.name == "Pending"


def test_wait_without_timeout() -> None:
    """Prefect: tests/test_futures.py (TestPrefectConcurrentFuture)."""
    future = value.submit(1)
    future.wait()
    assert future.state.is_completed()


def test_result_with_final_state() -> None:
    """Prefect: tests/test_futures.py (TestPrefectConcurrentFuture)."""
    assert value.submit(42).result() == 42


def test_result_with_final_state_and_raise_on_failure() -> None:
    """Prefect: tests/test_futures.py (TestPrefectConcurrentFuture)."""
    with pytest.raises(ValueError, match="oops"):
        fails.submit("oops").result(raise_on_failure=True)


def test_resolves_futures_in_nested_collections() -> None:
    """Prefect: tests/test_futures.py (TestResolveFuturesToResults): futures inside arguments."""
    nested = {"a": [value.submit(1), (value.submit(2), {value.submit(3)})], "b": value.submit(4)}
    assert value.submit(nested).result() == {"a": [1, (2, {3})], "b": 4}


@pytest.mark.parametrize("kind", [list, tuple, set])
def test_resolve_futures_transforms_future_in_listlike_type(kind: type) -> None:
    """Prefect: tests/test_futures.py (TestResolveFuturesToResults)."""
    assert value.submit(kind([value.submit(1)])).result() == kind([1])


def test_resolve_futures_transforms_future_in_dictlike_type() -> None:
    """Prefect: tests/test_futures.py (TestResolveFuturesToResults)."""
    assert value.submit({"key": value.submit(1)}).result() == {"key": 1}


@xfail_differs("Futures are resolved inside lists, tuples, sets and dicts")
def test_resolve_futures_transforms_future_in_dataclass() -> None:
    """Prefect: tests/test_futures.py (TestResolveFuturesToResults); ours leaves dataclasses alone."""
    @dataclass
    class Holder:
        inner: Any

    assert value.submit(Holder(value.submit(1))).result() == Holder(1)


def test_resolve_futures_to_results_downcasts_prefect_future_list() -> None:
    """Prefect: tests/test_futures.py: a FutureList passed on becomes a plain list of values."""
    resolved = value.submit(value.map([1, 2])).result()
    assert type(resolved) is list and resolved == [1, 2]


class TestPrefectFutureList:
    """Prefect: tests/test_futures.py (TestPrefectFutureList)."""

    def test_wait(self) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList)."""
        futures = value.map(range(5))
        futures.wait()
        assert all(future.state.is_completed() for future in futures)


    def test_result_with_negative_timeout_raises_value_error(self) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList)."""
        futures = value.map(range(5))
        with pytest.raises(ValueError, match="'timeout' must be a non-negative number") as err:
            futures.result(timeout=-1)
        assert isinstance(err.value, ConfigurationError)


    def test_wait_with_timeout(self, gate: threading.Event) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList): returns without raising or hanging."""
        futures = FutureList([*value.map(range(5)), held(gate)])
        futures.wait(timeout=0.01)
        assert not futures[-1].done()


    def test_results(self) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList)."""
        assert value.map(range(5)).result() == [0, 1, 2, 3, 4]


    def test_results_with_failure(self) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList)."""
        futures = FutureList([*value.map(range(5)), fails.submit("oops")])
        with pytest.raises(ValueError, match="oops"):
            futures.result()


    def test_results_with_raise_on_failure_false(self) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList)."""
        futures = FutureList([*value.map(range(5)), fails.submit("oops")])
        results = futures.result(raise_on_failure=False)
        assert results[:5] == [0, 1, 2, 3, 4] and isinstance(results[5], ValueError)


    def test_results_with_timeout(self, gate: threading.Event) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList)."""
        futures = FutureList([*value.map(range(5)), held(gate)])
        with pytest.raises(TimeoutError):
            futures.result(timeout=0.01)


    def test_result_does_not_obscure_other_timeouts(self) -> None:
        """Prefect: tests/test_futures.py (TestPrefectFutureList): a task's own TimeoutError is its error."""
        @task
        def times_out() -> None:
            raise TimeoutError("oops")

        futures = FutureList([*value.map(range(5)), times_out.submit()])
        with pytest.raises(TimeoutError, match="oops"):
            futures.result(timeout=30)


class TestUtilityFunctions:
    """Prefect: tests/test_futures.py (TestUtilityFunctions): ``wait`` and ``as_completed``."""

    def test_wait(self) -> None:
        futures = list(value.map(range(5)))
        done, not_done = wait(futures)
        assert not_done == set() and done == set(futures)
        assert all(future.state.is_completed() for future in futures)

    def test_wait_with_negative_timeout_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
            wait(value.map(range(5)), timeout=-1)

    def test_as_completed_with_negative_timeout_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
            list(as_completed(value.map(range(5)), timeout=-1))

    def test_wait_with_timeout(self, gate: threading.Event) -> None:
        futures = [*value.map(range(5)), held(gate)]
        assert wait(futures, timeout=0.01).not_done == {futures[-1]}

    def test_as_completed(self) -> None:
        futures = value.map(range(5))
        seen = list(as_completed(futures))
        assert set(seen) == set(futures) and all(f.state.is_completed() for f in seen)

    def test_as_completed_with_timeout(self, gate: threading.Event) -> None:
        futures = [*value.map(range(5)), held(gate)]
        with pytest.raises(TimeoutError) as err:
            for future in as_completed(futures, timeout=0.01):
                assert future.state.is_completed()
        assert err.value.args[0] == f"1 (of {len(futures)}) futures unfinished"

    def test_as_completed_with_zero_timeout_yields_completed_future(self) -> None:
        future = value.submit(42)
        future.wait()
        assert [f.result() for f in as_completed([future], timeout=0)] == [42]

    def test_as_completed_yields_correct_order(self) -> None:
        """Finishing order, made by gates instead of sleeps: the last submitted finishes first."""
        gates = [threading.Event() for _ in range(3)]

        @task
        def gated(index: int) -> int:
            assert gates[index].wait(120)
            return index

        futures = [gated.submit(i) for i in (2, 1, 0)]
        order = []
        gates[0].set()
        for future in as_completed(futures, timeout=120):
            order.append(future.result())
            if len(order) < 3:
                gates[len(order)].set()  # the next one may finish only now
        assert order == [0, 1, 2]
