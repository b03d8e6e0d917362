"""Tasks on real backends and against damaged records."""

from __future__ import annotations

import asyncio
import logging

from resultkit import task
from resultkit.cache_policies import INPUTS
from resultkit.storage import S3Storage


def test_a_task_caches_in_s3_and_a_fresh_task_hits(s3_bucket, s3_endpoint):
    storage = S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint, skip_instance_cache=True)
    calls = []

    def body(rows):
        calls.append(rows)
        return {"rows": rows}

    first = task(cache_policy=INPUTS, result_storage=storage, name="etl.load")(body)
    again = task(cache_policy=INPUTS, result_storage=storage, name="etl.load",
                 cache_result_in_memory=False)(body)
    state = first(10, return_state=True)
    assert state.name == "Completed"
    assert list(storage.list("")) == [state.cache_key]
    hit = again(10, return_state=True)
    assert hit.name == "Cached" and hit.result() == {"rows": 10} and calls == [10]
    assert hit.reference.get() == {"rows": 10}


def test_a_corrupt_record_is_a_miss_with_a_warning_and_is_rewritten(tmp_path, caplog):
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_result_in_memory=False)
    def f(x):
        calls.append(x)
        return list(range(x))

    key = f(50, return_state=True).cache_key
    record = tmp_path / key
    data = bytearray(record.read_bytes())
    data[-3] ^= 0xFF  # flip a payload bit
    record.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert f(50) == list(range(50))
    assert calls == [50, 50] and key[:12] in caplog.text
    assert f(50, return_state=True).name == "Cached"  # the rerun rewrote a good record


def test_async_commit_hooks_run(tmp_path):
    events = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def f(x):
        return x

    @f.on_commit
    async def committed(txn):
        await asyncio.sleep(0)
        events.append(("commit", txn.key is not None))

    f(1)
    assert events == [("commit", True)]
