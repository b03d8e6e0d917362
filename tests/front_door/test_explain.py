"""t.explain(): which record answers a hit, and what differs for a miss."""

from __future__ import annotations

from datetime import timedelta

from resultkit import flow, task
from resultkit.cache_policies import DEFAULT, INPUTS, TASK_SOURCE


def test_a_hit_names_the_record_that_answers_it(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x, y=1):
        return x + y

    key = f(1, return_state=True).cache_key
    answer = f.explain(1)
    assert answer.hit and answer.record_key == key
    assert str(answer) == f"hit: record {key} answers key {key}"


def test_a_miss_names_the_differing_argument_of_the_nearest_record(tmp_path):
    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(tmp_path))
    def train(data, alpha=0.1, epochs=3):
        return data

    near = train("a.csv", alpha=0.1, return_state=True).cache_key
    train("b.csv", alpha=0.5, epochs=9)
    answer = train.explain("a.csv", alpha=0.2)
    assert not answer.hit and answer.record_key == near
    assert answer.differences == ["argument 'alpha' differs"]
    assert "argument 'alpha' differs" in str(answer) and near in str(answer)


def test_a_miss_reports_changed_source(tmp_path):
    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(tmp_path), name="versioned")
    def v1(x):
        return x

    v1(1)

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(tmp_path), name="versioned")
    def v2(x):
        return x + 1  # a code change

    assert v2.explain(1).differences == ["the task's source code differs"]


def test_a_miss_outside_a_flow_blames_the_run_id(tmp_path):
    @task(cache_policy=DEFAULT, result_storage=str(tmp_path))
    def f(x):
        return x

    f(1)
    (difference,) = f.explain(1).differences
    assert difference.startswith("the run id differs (outside a flow RUN_ID uses each call's own id")


def test_a_miss_inside_another_flow_run_names_the_run(tmp_path):
    @task(cache_policy=DEFAULT, result_storage=str(tmp_path))
    def f(x):
        return x

    @flow
    def run(x):
        f(x)
        return f.explain(x)

    assert run(1).hit

    @flow
    def later(x):
        return f.explain(x)

    (difference,) = later(1).differences
    assert difference.startswith("the run id differs (this run is ")


def test_an_expired_record_at_the_key_is_reported(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_expiration=timedelta(microseconds=1))
    def f(x):
        return x

    key = f(1, return_state=True).cache_key
    answer = f.explain(1)
    assert not answer.hit and answer.record_key == key
    assert answer.differences[0].startswith("the record at this key expired at ")


def test_nothing_stored_and_nothing_persisted(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        return x

    assert "no stored record of task" in str(f.explain(1))

    @task
    def plain(x):
        return x

    assert "does not persist results" in str(plain.explain(1))


def test_records_of_other_tasks_are_never_the_nearest(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def a(x):
        return x

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def b(x):
        return x

    a(1)
    assert b.explain(1).record_key is None
