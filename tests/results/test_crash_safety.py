"""Crash safety: a writer killed with SIGKILL mid-write never leaves a partial record visible."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from resultkit.errors import RecordNotFound
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage

KEY = "crash/record"
ELEMENTS = 2 << 20  # 2 Mi float64 = 16 MiB per record
MIN_KILLS = 24
MIN_MID_WRITE_KILLS = 5
MAX_KILLS = 80


def write_forever(basepath: str, first_value: int, acks: Connection) -> None:
    """Child: write KEY again and again, reporting each value once its write has completed."""
    store = ResultStore(LocalStorage(basepath))
    value = first_value
    while True:
        store.write(KEY, np.full(ELEMENTS, value, dtype=np.float64))
        acks.send(value)
        value += 1


def drain(receive: Connection, stored: int | None) -> int | None:
    """The last value the (now dead) child acknowledged, or ``stored`` if it sent no more."""
    try:
        while True:
            stored = receive.recv()
    except EOFError:  # the child's end closed when it died
        receive.close()
        return stored


def leftover_temp_files(basepath: Path) -> list[Path]:
    return [p for p in (basepath / "crash").glob(".rk-*") if p.is_file()]


def test_sigkill_mid_write_leaves_a_whole_record_or_none(tmp_path: Path) -> None:
    basepath = tmp_path / "records"
    reader = ResultStore(LocalStorage(basepath))
    context = multiprocessing.get_context("fork")
    rng = random.Random(20261122)
    stored: int | None = None  # value of the last record known to be complete
    kills = mid_write_kills = 0

    while kills < MIN_KILLS or (mid_write_kills < MIN_MID_WRITE_KILLS and kills < MAX_KILLS):
        receive, send = context.Pipe(duplex=False)
        first_value = kills * 1000
        child = context.Process(target=write_forever, args=(str(basepath), first_value, send))
        child.start()
        send.close()
        for _ in range(rng.randint(0, 2)):  # let 0-2 writes complete (synchronised on the pipe)
            stored = receive.recv()
        time.sleep(rng.uniform(0.0, 0.03))  # a random moment, not a synchronisation
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        kills += 1
        stored = drain(receive, stored)

        temps = leftover_temp_files(basepath)
        mid_write_kills += bool(temps)
        for temp in temps:  # what `resultkit gc` would remove; saves disk in this loop
            temp.unlink()

        # A complete write may have finished after its last ack: the record holds the
        # last acknowledged value or the one after it, never anything partial.
        if stored is None:
            try:
                record = reader.read(KEY)
            except RecordNotFound:
                continue
            allowed = {first_value}
        else:
            record = reader.read(KEY)  # raises RecordCorruptError on a partial record
            allowed = {stored, stored + 1}
        array = record.result
        assert array.shape == (ELEMENTS,)
        value = int(array[0])
        assert value in allowed or (value == first_value and stored is not None and stored < first_value)
        assert np.all(array == value)
        stored = value
        hit = reader.lookup(KEY)
        assert hit is not None and int(hit.result[-1]) == value
        assert list(reader.list()) == [KEY]

    assert kills >= MIN_KILLS
    # The test means something only if kills really landed inside writes.
    assert mid_write_kills >= 1, "no kill interrupted a write; the test proved nothing"
