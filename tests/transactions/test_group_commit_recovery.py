"""Recovery of group commits that did not finish: outages that outlast the undo, dead writers, gc.

Nothing here is ever "delete it by hand": a record of a commit that did not finish is
invisible, and the next reader or `resultkit gc` removes it once its writer is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from conftest import free_port, wait_http

from resultkit import transaction
from resultkit.errors import StorageError
from resultkit.results import ResultStore
from resultkit.results.journal import JOURNAL_FOLDER, sweep_journals
from resultkit.storage import LocalStorage, S3Storage
from resultkit.storage.retry import RetryPolicy

fork = multiprocessing.get_context("fork")


class Outage:
    """A moto S3 server of our own that the test can stop mid-commit and start again (same port)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: Any = None
        self.start()

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_http(self.endpoint + "/moto-api/")

    def stop(self) -> None:
        self.server.stop()

    def storage(self, bucket: str) -> S3Storage:
        storage = S3Storage(bucket, "results", endpoint_url=self.endpoint, skip_instance_cache=True,
                            config_kwargs={"retries": {"max_attempts": 1}})
        storage.retry_policy = RetryPolicy(attempts=1)  # the outage is the point: fail fast
        return storage


@pytest.fixture
def outage() -> Iterator[Outage]:
    server = Outage()
    yield server
    server.stop()


class StopsTheServer:
    """A value whose serialization takes S3 down: the commit's next PUT and its undo both fail."""

    def __init__(self, outage: Outage) -> None:
        self.outage = outage

    def __reduce__(self) -> tuple[Any, ...]:
        self.outage.stop()
        return (str, ("never stored",))


def _commit_across_an_outage(outage: Outage, bucket: str) -> ResultStore:
    store = ResultStore(outage.storage(bucket))
    with pytest.raises(StorageError) as err, transaction(store=store):
        with transaction(key="first", store=store) as first:
            first.stage("written before the outage")
        with transaction(key="second", store=store) as second:
            second.stage(StopsTheServer(outage))
    assert err.value.has_value  # nothing computed is lost
    return store


def test_an_outage_that_outlasts_the_undo_never_serves_the_orphan(outage: Outage) -> None:
    bucket = "outage-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=outage.endpoint).create_bucket(Bucket=bucket)
    _commit_across_an_outage(outage, bucket)
    outage.start()  # S3 is back; the first record is still there, behind its journal
    storage = outage.storage(bucket)
    assert storage.exists("first") and list(storage._list(JOURNAL_FOLDER + "/"))
    reader = ResultStore(outage.storage(bucket))
    assert reader.lookup("first") is None  # never served: the commit did not finish
    # This process wrote it and is no longer committing it, so the reader recovered it at once.
    assert not storage.exists("first") and not list(storage._list(JOURNAL_FOLDER + "/"))
    with transaction(key="first", store=reader) as again:  # the next call recomputes it
        assert not again.is_committed()
        again.stage("recomputed")
    assert reader.read("first").result == "recomputed"


def test_gc_undoes_a_commit_left_by_an_outage(outage: Outage) -> None:
    bucket = "outage-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=outage.endpoint).create_bucket(Bucket=bucket)
    _commit_across_an_outage(outage, bucket)
    outage.start()
    storage = outage.storage(bucket)
    assert sweep_journals(storage, dry_run=True) != [] and storage.exists("first")
    assert len(sweep_journals(storage)) == 1
    assert not storage.exists("first") and sweep_journals(storage) == []


def _die_mid_commit(basepath: str, ready: Any) -> None:
    """Child: write the journal and the first of two records, then wait to be killed."""
    store = ResultStore(LocalStorage(basepath))

    class Hang:
        def __reduce__(self) -> tuple[Any, ...]:
            ready.send(True)
            signal.pause()  # killed here, between the first record and the second
            return (str, ("unreachable",))

    with transaction(store=store):
        with transaction(key="a", store=store) as a:
            a.stage("from a writer that dies")
        with transaction(key="b", store=store) as b:
            b.stage(Hang())


def test_resultkit_gc_undoes_the_commit_of_a_killed_writer(tmp_path: Path) -> None:
    basepath = tmp_path / "records"
    receive, send = fork.Pipe(duplex=False)
    child = fork.Process(target=_die_mid_commit, args=(str(basepath), send))
    child.start()
    assert receive.recv() is True
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join()
    storage = LocalStorage(basepath)
    assert storage.exists("a")  # on disk, behind the dead writer's journal
    dry = subprocess.run([sys.executable, "-m", "resultkit", "gc", "--dry-run", "--json", str(basepath)],
                         capture_output=True, text=True, check=True)
    assert len(orjson.loads(dry.stdout)["unfinished_commits"]) == 1 and storage.exists("a")
    done = subprocess.run([sys.executable, "-m", "resultkit", "gc", str(basepath)],
                          capture_output=True, text=True, check=True)
    assert "undid 1 unfinished commit(s)" in done.stdout
    assert not storage.exists("a") and not list(storage._list(JOURNAL_FOLDER + "/"))


def test_a_commit_slower_than_its_lease_keeps_renewing_it(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTKIT_COMMIT_LEASE", "0.3")
    storage = LocalStorage(tmp_path / "records")
    store = ResultStore(storage)
    signs_of_life: list[float] = []

    class Slow:
        """Serialized mid-commit: waits (bounded) until the heartbeat renewed the lease."""

        def __reduce__(self) -> tuple[Any, ...]:
            give_up = time.monotonic() + 30  # a bound on a broken heartbeat, not a synchronisation
            beats: list[str] = []
            while not beats and time.monotonic() < give_up:
                beats = [key for key in storage._list(JOURNAL_FOLDER + "/") if key.endswith(".beat")]
            signs_of_life.append(orjson.loads(storage._read(beats[0])))
            return (str, ("slow",))

    with transaction(store=store):
        with transaction(key="fast", store=store) as fast:
            fast.stage("fast")
        with transaction(key="slow", store=store) as slow:
            slow.stage(Slow())
    assert signs_of_life[-1] > 0  # the heartbeat wrote while the commit ran past its lease
    assert store.read("fast").result == "fast" and store.read("slow").result == "slow"
    assert list(storage._list(JOURNAL_FOLDER + "/")) == []  # journal and heartbeat both gone
