"""Precedence: task option > innermost flow or settings block > environment > pyproject > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from resultkit import ConfigurationError, flow, settings, task
from resultkit.cache_policies import INPUTS


def where(state) -> Path:
    """The directory the state's record was written to."""
    return Path(state.reference.storage.basepath)


def _record_serializer(state) -> str:
    from resultkit.results import ResultStore

    return ResultStore(state.reference.storage).metadata(state.reference.storage_key).serializer["type"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory whose pyproject.toml sets [tool.resultkit]."""
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / "pyproject.toml").write_text(
        "[tool.resultkit]\n"
        f"default_storage = '{tmp_path / 'from-pyproject'}'\n"
        "default_serializer = 'json'\n"
        "persist_by_default = true\n"
    )
    monkeypatch.chdir(cwd)
    return tmp_path


@task(cache_policy=INPUTS)
def policy_task(x):
    return x


@task
def plain_task(x):
    return x


def test_builtin_defaults(resultkit_home):
    state = policy_task(1, return_state=True)
    assert where(state) == resultkit_home / "storage"
    assert _record_serializer(state) == "pickle"
    assert plain_task(1, return_state=True).reference is None  # persist defaults to False


def test_pyproject_beats_builtin_defaults(project):
    state = plain_task(1, return_state=True)  # persist_by_default = true in pyproject
    assert where(state) == project / "from-pyproject"
    assert _record_serializer(state) == "json"


def test_environment_beats_pyproject(project, monkeypatch):
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(project / "from-env"))
    monkeypatch.setenv("RESULTKIT_DEFAULT_SERIALIZER", "pickle")
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "false")
    assert plain_task(1, return_state=True).reference is None
    state = policy_task(1, return_state=True)
    assert where(state) == project / "from-env"
    assert _record_serializer(state) == "pickle"


def test_settings_block_beats_environment_and_task_option_beats_block(project, monkeypatch):
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(project / "from-env"))
    with settings(result_storage=str(project / "from-block"), result_serializer="pickle"):
        state = policy_task(1, return_state=True)
        assert where(state) == project / "from-block"
        assert _record_serializer(state) == "pickle"
        own = policy_task.with_options(result_storage=str(project / "from-task"), result_serializer="json")
        state = own(1, return_state=True)
        assert where(state) == project / "from-task"
        assert _record_serializer(state) == "json"
    assert where(policy_task(2, return_state=True)) == project / "from-env"  # block closed


def test_blocks_nest_and_the_innermost_wins_per_option(tmp_path):
    with settings(result_storage=str(tmp_path / "outer"), result_serializer="json"):
        with settings(result_storage=str(tmp_path / "inner")):
            state = policy_task(1, return_state=True)
            assert where(state) == tmp_path / "inner"
            assert _record_serializer(state) == "json"  # inherited from the outer block
        assert where(policy_task(2, return_state=True)) == tmp_path / "outer"


def test_innermost_of_flow_and_settings_wins(tmp_path):
    @flow(result_storage=str(tmp_path / "flow"))
    def pipeline():
        first = policy_task(1, return_state=True)
        with settings(result_storage=str(tmp_path / "block-in-flow")):
            second = policy_task(1, return_state=True)
        return first, second

    with settings(result_storage=str(tmp_path / "block")):
        first, second = pipeline()
    assert where(first) == tmp_path / "flow"
    assert where(second) == tmp_path / "block-in-flow"


def test_settings_rejects_unknown_names_listing_the_valid_ones():
    with pytest.raises(ConfigurationError, match=r"'storage'.*valid options are result_storage, "
                                                 "result_serializer, persist_result, refresh_cache"):
        with settings(storage="/tmp/x"):
            pass
    with pytest.raises(ConfigurationError, match="persist_result must be True, False or None"):
        with settings(persist_result="yes"):
            pass


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "maybe")
    with pytest.raises(ConfigurationError, match="RESULTKIT_PERSIST_BY_DEFAULT='maybe'"):
        plain_task(1)
