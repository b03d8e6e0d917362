"""@flow: run ids, parameters, inheritance by tasks, retries that keep the run id, nesting."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from resultkit import ConfigurationError, flow, task
from resultkit.cache_policies import DEFAULT, FLOW_PARAMETERS, INPUTS, RUN_ID
from resultkit.context import get_run_context
from resultkit.results import ResultStore


def test_a_flow_run_has_a_uuid_run_id_and_bound_parameters():
    seen = []

    @flow
    def pipeline(day: str, limit: int = 10):
        seen.append(get_run_context())
        return day

    assert pipeline("2026-11-22") == "2026-11-22"
    pipeline("2026-11-22")
    first, second = seen
    assert uuid.UUID(first.run_id) and first.run_id != second.run_id
    assert first.flow_name == "pipeline"
    assert dict(first.parameters) == {"day": "2026-11-22", "limit": 10}
    assert get_run_context() is None


def test_tasks_inherit_storage_serializer_and_persistence(tmp_path):
    @task
    def plain(x):
        return {"x": x}

    @flow(result_storage=str(tmp_path), result_serializer="json", persist_result=True)
    def pipeline():
        return plain(1, return_state=True)

    state = pipeline()
    assert Path(state.reference.storage.basepath) == tmp_path
    metadata = ResultStore(str(tmp_path)).metadata(state.reference.storage_key)
    assert metadata.serializer["type"] == "json"
    assert plain(1, return_state=True).reference is None  # outside the flow: not persisted


def test_a_task_option_beats_the_flow(tmp_path):
    @task(persist_result=False)
    def ephemeral(x):
        return x

    @flow(result_storage=str(tmp_path), persist_result=True)
    def pipeline():
        return ephemeral(1, return_state=True)

    assert pipeline().reference is None and not any(tmp_path.iterdir())


def test_a_retried_flow_keeps_its_run_id_so_completed_tasks_hit(tmp_path):
    calls = []
    run_ids = []

    @task(cache_policy=DEFAULT)  # INPUTS + TASK_SOURCE + RUN_ID
    def extract(x):
        calls.append(("extract", x))
        return x * 2

    @task(cache_policy=DEFAULT)
    def load(x):
        calls.append(("load", x))
        if calls.count(("load", x)) == 1:
            raise ConnectionError("database away")
        return x + 1

    @flow(retries=1, retry_delay_seconds=0, result_storage=str(tmp_path))
    def pipeline(x):
        run_ids.append(get_run_context().run_id)
        return load(extract(x))

    assert pipeline(5) == 11
    assert run_ids[0] == run_ids[1]
    assert calls == [("extract", 5), ("load", 10), ("load", 10)]  # extract hit on the retry

    pipeline(5)  # a new run: RUN_ID differs, so everything runs again
    assert calls.count(("extract", 5)) == 2


def test_a_flow_out_of_retries_raises():
    @flow(retries=2)
    def broken():
        raise ValueError("always")

    with pytest.raises(ValueError, match="always"):
        broken()


def test_flows_nest_and_the_inner_run_has_its_own_id(tmp_path):
    seen = {}

    @task(cache_policy=RUN_ID + INPUTS)
    def step(x):
        seen.setdefault("task_runs", []).append(get_run_context().run_id)
        return x

    @flow(result_storage=str(tmp_path / "inner"))
    def inner(x):
        seen["inner"] = get_run_context()
        return step(x, return_state=True)

    @flow(result_storage=str(tmp_path / "outer"), result_serializer="json")
    def outer(x):
        seen["outer"] = get_run_context()
        state = inner(x)
        seen["after"] = get_run_context()
        return state

    state = outer(3)
    assert seen["inner"].parent is seen["outer"] and seen["after"] is seen["outer"]
    assert seen["inner"].run_id != seen["outer"].run_id
    assert seen["task_runs"] == [seen["inner"].run_id]
    assert Path(state.reference.storage.basepath) == tmp_path / "inner"
    assert ResultStore(str(tmp_path / "inner")).metadata(state.cache_key).serializer["type"] == "json"


def test_flow_parameters_policy_reads_the_run(tmp_path):
    calls = []

    @task(cache_policy=FLOW_PARAMETERS + INPUTS, result_storage=str(tmp_path))
    def step(x):
        calls.append(x)
        return x

    @flow
    def pipeline(region, x):
        return step(x)

    pipeline("eu", 1), pipeline("eu", 1), pipeline("us", 1)
    assert calls == [1, 1]


def test_async_flows_run_async_tasks(tmp_path):
    @task(cache_policy=INPUTS)
    async def fetch(x):
        return x * 3

    @flow(result_storage=str(tmp_path))
    async def pipeline(x):
        first = await fetch(x, return_state=True)
        second = await fetch(x, return_state=True)
        return first.name, second.name, get_run_context().flow_name

    assert asyncio.run(pipeline(2)) == ("Completed", "Cached", "pipeline")


def test_flow_options_are_validated():
    with pytest.raises(ConfigurationError, match="retries must be an int >= 0"):
        flow(retries=-1)(lambda: None)
    with pytest.raises(ConfigurationError, match=r"unknown flow option.*'cache_policy'"):
        flow(cache_policy=INPUTS)
    with pytest.raises(ConfigurationError, match="persist_result must be True, False or None"):
        flow(persist_result="no")(lambda: None)

    @flow(name="nightly")
    def pipeline():
        return get_run_context().flow_name

    assert pipeline() == "nightly" and pipeline.with_options(name="hourly")() == "hourly"
