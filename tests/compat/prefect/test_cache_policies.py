"""Answers Prefect's tests/test_cache_policies.py: one test of ours per behaviour, named after theirs.

Prefect's tests call policies as ``compute_key(task_ctx=None, inputs=..., flow_parameters=None)``;
so do these, because Prefect users' code does too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from resultkit.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    CacheKeyContext,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    FlowParameters,
    Inputs,
    NoCache,
    RunId,
    TaskSource,
)
from resultkit.transactions import IsolationLevel

from ._cite import xfail_differs

# Every policy class resultkit ships that takes no arguments (Prefect parametrizes over
# CachePolicy.__subclasses__(); ours is an explicit list so new classes are added on purpose).
POLICY_CLASSES: list[type[CachePolicy]] = [
    NoCache, Inputs, TaskSource, FlowParameters, RunId, CacheKeyFnPolicy, CompoundCachePolicy,
]


def key(policy: CachePolicy, inputs: Any = None, task_ctx: Any = None, flow_parameters: Any = None) -> Any:
    return policy.compute_key(task_ctx=task_ctx, inputs=inputs, flow_parameters=flow_parameters)


# -- TestBaseClass ------------------------------------------------------------------------


def test_cache_policy_initializes() -> None:
    """Prefect tests/test_cache_policies.py::TestBaseClass."""
    assert isinstance(CachePolicy(), CachePolicy)


def test_compute_key_not_implemented() -> None:
    """Prefect tests/test_cache_policies.py::TestBaseClass."""
    with pytest.raises(NotImplementedError, match="base class"):
        key(CachePolicy())


# -- TestNonePolicy -----------------------------------------------------------------------


def test_initializes() -> None:
    """Prefect tests/test_cache_policies.py::TestNonePolicy (and each class's test_initializes)."""
    for cls in POLICY_CLASSES:
        assert isinstance(cls(), CachePolicy)


def test_doesnt_compute_a_key() -> None:
    """Prefect tests/test_cache_policies.py::TestNonePolicy."""
    assert key(NoCache(), inputs={"x": 1}) is None


@pytest.mark.parametrize("typ", POLICY_CLASSES, ids=lambda cls: cls.__name__)
def test_addition_of_none_is_noop(typ: type[CachePolicy]) -> None:
    """Prefect tests/test_cache_policies.py::TestNonePolicy."""
    other = typ()
    assert NoCache() + other == other
    assert other + NoCache() == other


# -- TestInputsPolicy ---------------------------------------------------------------------


def test_key_varies_on_inputs() -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy."""
    none_key = key(Inputs())
    x_key, y_key = key(Inputs(), {"x": 42}), key(Inputs(), {"y": 42})
    z_key = key(Inputs(), {"z": "foo"})
    assert len({none_key, x_key, y_key, z_key}) == 4


def test_key_doesnt_vary_on_other_kwargs() -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy."""
    expected = key(Inputs(), {"x": 42})
    for values in itertools.permutations([None, 1, "foo", {}]):
        kwargs = dict(zip(["task_ctx", "flow_parameters", "other"], values))
        assert Inputs().compute_key(inputs={"x": 42}, **kwargs) == expected


def test_key_excludes_excluded_inputs() -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy."""
    policy = Inputs(exclude=["y"])
    expected = key(policy, {"x": 42})
    for value in (42, "foo", None):
        assert key(policy, {"x": 42, "y": value}) == expected


@xfail_differs("There is no `STABLE_TRANSFORMS` table")
def test_key_applies_stabilizing_transformations() -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy (patches a per-type transform table)."""
    from resultkit.cache_policies import policies

    transforms = policies.STABLE_TRANSFORMS  # type: ignore[attr-defined]
    transforms[dict] = lambda value: "foobar"
    assert key(Inputs(), {"y": {"x": "string"}}) == key(Inputs(), {"y": {"z": "otherstring"}})


def test_subtraction_results_in_new_policy_for_inputs() -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy."""
    policy = Inputs()
    new_policy = policy - "foo"
    assert new_policy != policy and new_policy.exclude != policy.exclude
    assert isinstance(new_policy.exclude, list)


@pytest.mark.parametrize("policy", [RunId(), RunId() + TaskSource()], ids=["run_id", "compound"])
def test_subtraction_is_noop_for_non_inputs_policies(policy: CachePolicy) -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy."""
    assert policy - "foo" is policy
    assert key(policy, {"foo": 42, "y": "changing-value"}) == key(policy, {"foo": 42, "y": "changed"})


def test_excluded_can_be_manipulated_via_subtraction() -> None:
    """Prefect tests/test_cache_policies.py::TestInputsPolicy."""
    policy = Inputs() - "y"
    assert policy.exclude == ["y"]
    expected = key(policy, {"x": 42})
    for value in (42, "foo", None):
        assert key(policy, {"x": 42, "y": value}) == expected
    with pytest.raises(TypeError, match="cannot be changed in place"):
        policy.exclude.append("x")  # the constants must not change through the list


# -- TestCompoundPolicy -------------------------------------------------------------------


def test_compound_initializes() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy::test_initializes."""
    assert isinstance(CompoundCachePolicy(), CachePolicy)


def test_creation_via_addition() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    assert isinstance(Inputs() + TaskSource(), CompoundCachePolicy)


def test_addition_creates_new_policies() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    two = CompoundCachePolicy()
    policy = Inputs() + two
    assert isinstance(policy, CompoundCachePolicy)
    assert policy != two and policy.policies != two.policies


def test_subtraction_creates_new_policies_if_input_dependency() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    policy = CompoundCachePolicy(policies=[Inputs()])  # type: ignore[arg-type]
    new_policy = policy - "foo"
    assert isinstance(new_policy, CompoundCachePolicy)
    assert new_policy != policy and new_policy.policies != policy.policies


def test_creation_via_subtraction() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    policy = DEFAULT - "y"
    assert isinstance(policy, CompoundCachePolicy)
    inputs = {"x": 42, "y": "foo"}
    assert key(policy, inputs) == key(RunId() + Inputs(exclude=["y"]), inputs)


def test_nones_are_ignored() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    policy = CompoundCachePolicy(policies=[NoCache(), NoCache()])  # type: ignore[arg-type]
    assert isinstance(policy, CompoundCachePolicy)
    assert key(policy, {"z": [1, 2]}, flow_parameters={"x": 42, "y": "foo"}) is None


def test_adding_two_compound_policies_merges_policies() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    one = CompoundCachePolicy(policies=[Inputs(), TaskSource()])  # type: ignore[arg-type]
    two = CompoundCachePolicy(policies=[RunId()])  # type: ignore[arg-type]
    policy = one + two
    assert isinstance(policy, CompoundCachePolicy) and len(policy.policies) == 3
    assert {Inputs(), RunId(), TaskSource()} == set(policy.policies)


def test_nested_compound_policies_are_flattened() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    policy = CompoundCachePolicy(policies=[  # type: ignore[arg-type]
        CompoundCachePolicy(policies=[Inputs(), TaskSource()]),  # type: ignore[arg-type]
        CompoundCachePolicy(policies=[RunId()]),  # type: ignore[arg-type]
    ])
    assert len(policy.policies) == 3
    assert {Inputs(), RunId(), TaskSource()} == set(policy.policies)


def test_compound_policy_deduplicates_inputs_on_subtraction() -> None:
    """Prefect tests/test_cache_policies.py::TestCompoundPolicy."""
    policy = CompoundCachePolicy(policies=[  # type: ignore[arg-type]
        Inputs(), TaskSource(), Inputs(exclude=["x"]), Inputs(exclude=["y"]),
    ])
    assert len(policy.policies) == 2
    new_policy = policy - "z"
    (inputs,) = [p for p in new_policy.policies if isinstance(p, Inputs)]
    assert sorted(inputs.exclude) == ["x", "y", "z"]
    assert len(new_policy.policies) == 2 and any(isinstance(p, TaskSource) for p in new_policy.policies)


# -- TestTaskSourcePolicy -----------------------------------------------------------------


def test_task_source_initializes() -> None:
    """Prefect tests/test_cache_policies.py::TestTaskSourcePolicy::test_initializes."""
    assert isinstance(TaskSource(), CachePolicy)


def test_changes_in_def_change_key() -> None:
    """Prefect tests/test_cache_policies.py::TestTaskSourcePolicy (a context whose .task is a function)."""
    @dataclass
    class TaskCtx:
        task: Any

    def my_func() -> None:
        pass

    first = key(TaskSource(), task_ctx=TaskCtx(my_func))

    def my_func(x: int) -> None:  # type: ignore[no-redef]
        pass

    second = key(TaskSource(), task_ctx=TaskCtx(my_func))
    assert first is not None and second is not None and first != second


def test_uses_stored_source_code() -> None:
    """Prefect tests/test_cache_policies.py::TestTaskSourcePolicy: the source captured at decoration."""
    a = CacheKeyContext(task_name="m.a", task_source="def task_a():\n    return 'a'")
    b = CacheKeyContext(task_name="m.a", task_source="def task_b():\n    return 'b'")
    key_a, key_b = key(TaskSource(), task_ctx=a), key(TaskSource(), task_ctx=b)
    assert key_a is not None and key_b is not None and key_a != key_b


# -- TestDefaultPolicy --------------------------------------------------------------------


def test_changing_the_inputs_busts_the_cache() -> None:
    """Prefect tests/test_cache_policies.py::TestDefaultPolicy."""
    assert key(DEFAULT, {"x": 42}) != key(DEFAULT, {"x": 43})


def test_changing_the_run_id_busts_the_cache() -> None:
    """Prefect tests/test_cache_policies.py::TestDefaultPolicy: a Prefect-shaped context and ours."""
    @dataclass
    class Run:
        id: str
        flow_run_id: str | None = None

    def my_task() -> None:
        pass

    @dataclass
    class TaskCtx:
        task_run: Run
        task: Any = my_task

    runs = [Run("a", "a"), Run("b", "b"), Run("c", None), Run("d", None)]
    keys = [key(DEFAULT, task_ctx=TaskCtx(run)) for run in runs]
    assert len(set(keys)) == 4
    ours = [CacheKeyContext(task_name="m.t", task_source="", run_id=run_id, call_id=call_id)
            for run_id, call_id in (("a", "a"), ("b", "b"), (None, "c"), (None, "d"))]
    assert len({key(DEFAULT, task_ctx=ctx) for ctx in ours}) == 4


def test_changing_the_source_busts_the_cache() -> None:
    """Prefect tests/test_cache_policies.py::TestDefaultPolicy."""
    one = CacheKeyContext(task_name="m.t", task_source="lambda: 'foo'", run_id="b", call_id="a")
    two = CacheKeyContext(task_name="m.t", task_source="lambda: 'bar'", run_id="b", call_id="a")
    assert key(DEFAULT, task_ctx=one) != key(DEFAULT, task_ctx=two)


# -- TestPolicyConfiguration ---------------------------------------------------------------


def test_configure_changes_storage() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    assert Inputs().configure(key_storage="/path/to/storage").key_storage == "/path/to/storage"


def test_configure_changes_locks() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    assert Inputs().configure(lock_manager="/path/to/locks").lock_manager == "/path/to/locks"


def test_configure_changes_isolation_level() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    policy = Inputs().configure(isolation_level="SERIALIZABLE")
    assert policy.isolation_level == "SERIALIZABLE" == IsolationLevel.SERIALIZABLE


def test_configure_changes_all_attributes() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    policy = Inputs().configure(key_storage="/path/to/storage", lock_manager="/path/to/locks",
                                isolation_level="SERIALIZABLE")
    assert (policy.key_storage, policy.lock_manager, policy.isolation_level) == (
        "/path/to/storage", "/path/to/locks", "SERIALIZABLE")


def test_configure_with_none_is_noop() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    assert Inputs().configure(key_storage=None, lock_manager=None, isolation_level=None) == Inputs()


def test_add_policy_with_configuration() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    policy = Inputs() + TaskSource().configure(lock_manager="/path/to/locks",
                                               isolation_level="SERIALIZABLE",
                                               key_storage="/path/to/storage")
    assert (policy.lock_manager, policy.isolation_level, policy.key_storage) == (
        "/path/to/locks", "SERIALIZABLE", "/path/to/storage")


def test_add_policy_with_conflict_raises() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    policy = Inputs() + TaskSource().configure(lock_manager="original_locks",
                                               key_storage="original_storage",
                                               isolation_level="SERIALIZABLE")
    with pytest.raises(ValueError, match="lock_manager"):
        policy + TaskSource().configure(lock_manager="other_locks")
    with pytest.raises(ValueError, match="key_storage"):
        policy + TaskSource().configure(key_storage="other_storage")
    with pytest.raises(ValueError, match="isolation_level"):
        policy + TaskSource().configure(isolation_level="READ_COMMITTED")


def test_configure_returns_new_policy() -> None:
    """Prefect tests/test_cache_policies.py::TestPolicyConfiguration."""
    policy = Inputs()
    assert policy.configure(key_storage="new_storage") is not policy


# -- resultkit's shapes of the same: Prefect's compute_key signature in custom policies ------


def test_flow_parameters_policy_reads_the_flow_parameters_argument() -> None:
    """Prefect's FlowParameters reads compute_key's flow_parameters argument (src/prefect/cache_policies.py)."""
    assert key(FLOW_PARAMETERS) is None  # outside a flow
    assert key(FLOW_PARAMETERS, flow_parameters={"x": 1}) != key(FLOW_PARAMETERS, flow_parameters={"x": 2})
