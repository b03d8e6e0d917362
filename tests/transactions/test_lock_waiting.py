"""The waiting algorithm every lock manager shares (wait_steps), through both of its drivers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from resultkit.locking.base import Unreachable, adrive, doubling_delays, drive, wait_steps


class Script:
    """Attempt outcomes played in order: True, False, or an exception to raise."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes: Iterator[Any] = iter(outcomes)
        self.attempts = 0
        self.pauses: list[float] = []

    def attempt(self) -> bool:
        self.attempts += 1
        outcome = next(self.outcomes, False)
        if isinstance(outcome, BaseException):
            raise outcome
        return bool(outcome)

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def _sync(script: Script, timeout: float | None) -> bool:
    return drive(wait_steps(timeout, "test lock"), script.attempt, script.pause)


def _async(script: Script, timeout: float | None) -> bool:
    async def attempt() -> bool:
        return script.attempt()

    async def pause(seconds: float) -> None:
        script.pause(seconds)

    return asyncio.run(adrive(wait_steps(timeout, "test lock"), attempt, pause))


DRIVERS: list[Callable[[Script, float | None], bool]] = [_sync, _async]


@pytest.fixture(params=DRIVERS, ids=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[[Script, float | None], bool]:
    return request.param  # type: ignore[no-any-return]


def test_success_on_the_first_attempt_never_pauses(run: Any) -> None:
    script = Script(True)
    assert run(script, 0) is True
    assert script.attempts == 1 and script.pauses == []


def test_timeout_zero_tries_once(run: Any) -> None:
    script = Script(False, True)
    assert run(script, 0) is False
    assert script.attempts == 1


def test_pauses_double_up_to_the_cap_until_success(run: Any) -> None:
    script = Script(False, False, False, False, False, True)
    assert run(script, None) is True
    assert script.attempts == 6
    assert script.pauses == [0.002, 0.004, 0.008, 0.01, 0.01]


def test_gives_up_when_the_time_is_up_and_never_pauses_past_it(run: Any) -> None:
    class Sleeping(Script):
        def pause(self, seconds: float) -> None:
            super().pause(seconds)
            time.sleep(seconds)

    script = Sleeping()  # never succeeds
    assert run(script, 0.05) is False
    assert script.attempts > 1
    assert sum(script.pauses) <= 0.05  # each pause is capped by the time left


def test_an_outage_is_retried_with_longer_pauses_then_the_wait_goes_on(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    down = Unreachable("cannot reach redis://example:6379/0")
    script = Script(down, down, down, False, True)
    with caplog.at_level(logging.WARNING, logger="resultkit.locking"):
        assert run(script, 60) is True
    assert script.pauses[:3] == [0.05, 0.1, 0.2]  # outage backoff, then back to polling
    assert script.pauses[3] == 0.002
    messages = [record.getMessage() for record in caplog.records]
    assert sum("retrying with backoff" in m for m in messages) == 1  # warned once
    assert any("reachable again" in m for m in messages)


def test_an_outage_that_outlasts_the_timeout_is_raised(run: Any) -> None:
    script = Script(*[Unreachable("cannot reach the lock server")] * 1000)
    with pytest.raises(Unreachable, match="cannot reach the lock server"):
        run(script, 0)


def test_other_errors_are_not_retried(run: Any) -> None:
    script = Script(False, KeyError("boom"), True)
    with pytest.raises(KeyError, match="boom"):
        run(script, 60)
    assert script.attempts == 2


def test_doubling_delays() -> None:
    delays = doubling_delays(0.1, 0.3)
    assert [next(delays) for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]
