"""Prefect's shapes at resultkit's front door (issue 14): keys derived once per call, the key
context Prefect code reads, Prefect-style custom policies, storage-key templates, flow states
and persisted flow values, tags, log_prints, timeouts and tasks that travel like Prefect's."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import threading
from pathlib import Path
from typing import Any

import cloudpickle
import orjson
import pytest

from resultkit import RunTimeout, flow, task
from resultkit.cache_policies import DEFAULT, INPUTS, TASK_SOURCE, CachePolicy
from resultkit.cli import main as cli_main
from resultkit.results import ResultStore


class Counted:
    """An input that counts how often it is hashed (its ``__getstate__`` is what the hasher reads)."""

    hashed = 0

    def __init__(self, value: int) -> None:
        self.value = value

    def __getstate__(self) -> dict[str, Any]:
        Counted.hashed += 1
        return {"value": self.value}


@pytest.fixture(autouse=True)
def _reset_count() -> None:
    Counted.hashed = 0


def _header_extra(storage: Path, key: str) -> dict[str, Any]:
    return orjson.loads((storage / key).read_bytes().split(b"\n", 1)[0])["metadata"]["extra"]


@pytest.mark.parametrize("policy", [INPUTS, INPUTS + TASK_SOURCE, DEFAULT], ids=["inputs", "source", "default"])
@pytest.mark.parametrize("by_keyword", [False, True])
def test_a_miss_hashes_each_input_once_and_records_those_digests(tmp_path: Path, policy: CachePolicy,
                                                                 by_keyword: bool) -> None:
    @task(cache_policy=policy, result_storage=tmp_path)
    def double(item: Counted, n: int) -> int:
        return 2 * item.value * n

    @flow
    def twice() -> Any:  # in one flow run, so DEFAULT's RUN_ID part is the same for both calls
        double(item=Counted(3), n=1) if by_keyword else double(Counted(3), 1)
        return double(Counted(3), 1, return_state=True)

    state = twice()
    assert state.name == "Cached"
    # first call: one hash on the miss (key and header parts alike); second: one for the hit's key
    assert Counted.hashed == 2
    parts = _header_extra(tmp_path, state.cache_key)["key_parts"]
    from resultkit.cache_policies import hash_value

    assert parts["inputs"] == {"item": hash_value(Counted(3), name="item"), "n": hash_value(1, name="n")}


def test_a_cache_key_fn_runs_once_per_miss_and_once_per_hit(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        calls.append(parameters)
        return f"squares/{parameters['x']}"

    @task(cache_key_fn=key_fn, result_storage=tmp_path)
    def square(x: int) -> int:
        return x * x

    assert square(4) == 16 and len(calls) == 1
    assert square(4, return_state=True).name == "Cached" and len(calls) == 2
    assert _header_extra(tmp_path, "squares/4")["key_parts"] == {
        f"cache_key_fn:{__name__}.test_a_cache_key_fn_runs_once_per_miss_and_once_per_hit.<locals>.key_fn":
            "squares/4"}


def test_the_key_context_offers_prefects_task_run_task_and_parameters(tmp_path: Path) -> None:
    seen: list[Any] = []

    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        seen.append((context.task_run, context.task, dict(context.parameters), parameters))
        return f"{context.task_run.task_name}-{context.task_run.flow_run_id}"

    @task(cache_key_fn=key_fn, result_storage=tmp_path)
    def load(day: str, limit: int = 3) -> str:
        return day * limit

    @flow
    def pipeline(day: str) -> str:
        return load(day)

    assert pipeline("a") == "aaa"
    task_run, task_obj, context_parameters, parameters = seen[0]
    assert task_obj is load and context_parameters == parameters == {"day": "a", "limit": 3}
    assert task_run.task_name == "load" and task_run.flow_run_id is not None
    assert task_run.id and task_run.name.startswith("load-")
    assert (tmp_path / f"load-{task_run.flow_run_id}").exists()


def test_a_custom_policy_with_prefects_compute_key_signature_works(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []

    class ByUser(CachePolicy):  # written for Prefect: compute_key(task_ctx, inputs, flow_parameters)
        def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                        **kwargs: Any) -> str | None:
            calls.append((task_ctx.task_run.flow_run_id, flow_parameters))
            return f"user-{inputs['user']}"

    @task(cache_policy=ByUser(), result_storage=tmp_path)
    def profile(user: str, verbose: bool = False) -> str:
        return user.upper()

    @flow
    def nightly(user: str) -> list[str]:
        return [profile(user, return_state=True).name, profile(user, verbose=True, return_state=True).name]

    assert nightly("ada") == ["Completed", "Cached"]
    assert len(calls) == 2 and calls[0][1] == {"user": "ada"}
    assert (tmp_path / "user-ada").exists()
    # composed with a built-in policy, its key is one part of the compound key
    composed = task(cache_policy=ByUser() + TASK_SOURCE, result_storage=tmp_path)(lambda user: user)
    state = composed("bob", return_state=True)
    assert state.cache_key != "user-bob" and len(calls) == 3
    assert "user-bob" in _header_extra(tmp_path, state.cache_key)["key_parts"].values()


def test_result_storage_key_templates_over_flow_run_and_task_run(tmp_path: Path) -> None:
    @task(result_storage=tmp_path,
          result_storage_key="{flow_run.flow_name}/{task_run.task_name}/{parameters[x]}")
    def step(x: int) -> int:
        return x + 1

    @flow(name="etl")
    def etl(x: int) -> int:
        return step(x)

    assert etl(1) == 2
    assert (tmp_path / "etl" / "step" / "1").exists()


def test_a_flow_returns_its_state_and_persists_its_value(tmp_path: Path) -> None:
    @flow(persist_result=True, result_storage=tmp_path)
    def total(n: int) -> int:
        return sum(range(n))

    state = total(5, return_state=True)
    assert (state.name, state.result()) == ("Completed", 10)
    assert state.reference is not None and state.reference.get() == 10
    assert ResultStore(tmp_path).read(state.reference.storage_key).result == 10

    @flow
    def broken() -> None:
        raise KeyError("missing")

    failed = broken(return_state=True)
    assert failed.name == "Failed" and isinstance(failed.exception, KeyError)
    with pytest.raises(KeyError):
        failed.result()
    assert total(3) == 3  # without return_state: the value
    assert flow(lambda: 1)(return_state=True).reference is None  # not persisting: no record


def test_tags_description_and_version_are_kept_and_tags_recorded(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    @task(cache_policy=INPUTS, result_storage=tmp_path, tags=["gpu"], version="2", description="Trains.")
    def train(x: int) -> int:
        return x

    @flow(tags={"nightly"}, version="7", description="The nightly run.")
    def nightly() -> Any:
        return train(1, return_state=True)

    state = nightly()
    assert (train.tags, train.version, train.description) == ({"gpu"}, "2", "Trains.")
    assert (nightly.tags, nightly.version, nightly.description) == ({"nightly"}, "7", "The nightly run.")
    assert _header_extra(tmp_path, state.cache_key)["tags"] == ["gpu", "nightly"]
    capsys.readouterr()
    assert cli_main(["ls", str(tmp_path), "--json"]) == 0
    (row,) = orjson.loads(capsys.readouterr().out)
    assert row["tags"] == ["gpu", "nightly"]


def test_log_prints_sends_prints_to_the_resultkit_logger(caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    @task
    def inner() -> None:
        print("from the task")

    @task(log_prints=False)
    def quiet() -> None:
        print("not logged")

    @flow(log_prints=True)
    def chatty() -> None:
        print("from the flow", 1)
        inner()
        quiet()

    with caplog.at_level(logging.INFO, logger="resultkit"):
        chatty()
        print("outside")
    messages = [r.getMessage() for r in caplog.records if r.name == "resultkit"]
    assert "from the flow 1" in messages and "from the task" in messages
    out = capsys.readouterr().out
    assert "not logged" in out and "outside" in out and "from the flow" not in out


def test_timeout_seconds_interrupts_sync_bodies_in_any_thread() -> None:
    @task(timeout_seconds=0.2)
    def hangs() -> None:
        threading.Event().wait()  # a blocking wait: interrupted by the timer signal

    with pytest.raises(RunTimeout, match=r"task 'hangs' ran longer than its timeout_seconds=0.2"):
        hangs()

    @task(timeout_seconds=0.2)
    def spins() -> None:
        while True:
            pass

    errors: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            spins()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], RunTimeout) and isinstance(errors[0], TimeoutError)

    @flow(timeout_seconds=0.2)
    def slow_flow() -> None:
        threading.Event().wait()

    state = slow_flow(return_state=True)
    assert state.name == "Failed" and isinstance(state.exception, RunTimeout)
    assert task(timeout_seconds=5)(lambda: 3)() == 3  # a body that finishes in time returns


def test_timeout_seconds_cancels_async_bodies_and_keeps_their_own_timeouts() -> None:
    @task(timeout_seconds=0.2)
    async def hangs() -> None:
        await asyncio.Event().wait()

    with pytest.raises(RunTimeout, match=r"timeout_seconds=0\.2"):
        asyncio.run(hangs())

    @task(timeout_seconds=5)
    async def raises_its_own() -> None:
        raise TimeoutError("the body's own")

    with pytest.raises(TimeoutError, match="the body's own") as info:
        asyncio.run(raises_its_own())
    assert not isinstance(info.value, RunTimeout)


@task(cache_policy=INPUTS)
def module_level(x: int) -> int:
    return x + 1


def test_a_task_survives_copy_and_pickling_of_itself_and_its_dict(tmp_path: Path) -> None:
    @task(cache_policy=INPUTS, result_storage=tmp_path, cache_key_fn=None)
    def local(x: int) -> int:
        return x * 3

    for original in (module_level, local):
        original(1)  # plans (stores, memory tier, locks) exist now
        for clone in (copy.copy(original), copy.deepcopy(original), pickle.loads(pickle.dumps(original)),
                      cloudpickle.loads(cloudpickle.dumps(original))):
            assert clone(2) == original(2) and clone.options == original.options
        for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
            assert loads(dumps(original.__dict__)).keys() == original.__dict__.keys()
        assert copy.copy(original.__dict__).keys() == original.__dict__.keys()

    # Prefect's update_wrapper copies the task's __dict__ onto its own task: that copy pickles.
    class Wrapper:
        pass

    wrapper = Wrapper()
    wrapper.__dict__.update(local.__dict__)
    assert pickle.loads(pickle.dumps(wrapper.__dict__)).keys() == local.__dict__.keys()


def test_nested_timeouts_each_report_their_own() -> None:
    @task(timeout_seconds=30)
    def patient() -> None:
        threading.Event().wait()

    @flow(timeout_seconds=0.3)
    def impatient() -> None:
        patient()

    with pytest.raises(RunTimeout, match="flow 'impatient'"):
        impatient()

    @task(timeout_seconds=0.2)
    def quick() -> None:
        threading.Event().wait()

    @flow(timeout_seconds=30)
    def relaxed() -> str:
        try:
            quick()
        except RunTimeout as exc:
            return str(exc)
        return "no timeout"

    assert relaxed().startswith("task 'quick' ran longer")


def test_an_async_flow_returns_its_state_and_persists_its_value(tmp_path: Path) -> None:
    @flow(persist_result=True, result_storage=tmp_path, log_prints=True)
    async def total(n: int) -> int:
        await asyncio.sleep(0)
        return sum(range(n))

    state = asyncio.run(total(4, return_state=True))
    assert (state.name, state.result(), state.reference.get()) == ("Completed", 6, 6)

    @flow
    async def broken() -> None:
        raise ValueError("no")

    failed = asyncio.run(broken(return_state=True))
    assert failed.name == "Failed" and isinstance(failed.exception, ValueError)
