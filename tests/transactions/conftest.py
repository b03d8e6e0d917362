"""Fixtures for the transaction and lock tests."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path
from typing import Any

import pytest

from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import FileLockManager, MemoryLockManager, RedisLockManager


@pytest.fixture(params=["memory", "file", "redis"])
def lock_manager(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each lock manager in turn, for the contract suite."""
    if request.param == "memory":
        return MemoryLockManager()
    if request.param == "file":
        return FileLockManager(tmp_path / "locks")
    return RedisLockManager(request.getfixturevalue("redis_url"))


@pytest.fixture
def lock_key() -> str:
    """A key no other test uses (Redis is shared by the whole session)."""
    return f"results/{uuid.uuid4().hex}"


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    """A real ResultStore on local disk."""
    return ResultStore(LocalStorage(tmp_path / "storage"))


@pytest.fixture
def spawn() -> Any:
    """A spawn multiprocessing context: children never inherit the test process's threads."""
    return multiprocessing.get_context("spawn")
