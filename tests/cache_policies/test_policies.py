"""Cache policies: every rule of SPEC section 2, through the public API."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resultkit.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
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
from resultkit.errors import ConfigurationError, HashError

CTX = CacheKeyContext(task_name="pkg.mod.train", task_source="def train(x, y=1): ...", call_id="call-1")


def ctx(**changes: Any) -> CacheKeyContext:
    fields = {
        "task_name": CTX.task_name,
        "task_source": CTX.task_source,
        "run_id": CTX.run_id,
        "flow_parameters": CTX.flow_parameters,
        "call_id": CTX.call_id,
    }
    fields.update(changes)
    return CacheKeyContext(**fields)


# -- INPUTS ---------------------------------------------------------------------------


def test_inputs_key_depends_on_argument_values_not_their_order() -> None:
    key = INPUTS.compute_key(CTX, {"x": 1, "y": 2})
    assert key is not None and len(key) == 32
    assert INPUTS.compute_key(CTX, {"y": 2, "x": 1}) == key
    assert INPUTS.compute_key(CTX, {"x": 1, "y": 3}) != key
    # Names matter: the same values bound to other parameters are another call.
    assert INPUTS.compute_key(CTX, {"x": 2, "y": 1}) != key
    assert INPUTS.compute_key(CTX, {"a": 1, "y": 2}) != key


def test_inputs_key_parts_name_each_argument() -> None:
    parts = INPUTS.key_parts(CTX, {"x": 1, "y": [1, 2]})
    assert parts is not None
    assert set(parts["inputs"]) == {"x", "y"}
    other = INPUTS.key_parts(CTX, {"x": 1, "y": [1, 3]})
    assert other is not None
    assert parts["inputs"]["x"] == other["inputs"]["x"]
    assert parts["inputs"]["y"] != other["inputs"]["y"]


def test_inputs_exclude_and_subtraction_drop_arguments() -> None:
    lock = threading.Lock()
    with pytest.raises(HashError, match="'client'"):
        INPUTS.compute_key(CTX, {"x": 1, "client": lock})
    excluded = Inputs(exclude=["client"]).compute_key(CTX, {"x": 1, "client": lock})
    assert excluded == (INPUTS - "client").compute_key(CTX, {"x": 1, "client": object()})
    assert excluded == INPUTS.compute_key(CTX, {"x": 1})
    assert Inputs(exclude=["client"]) == INPUTS - "client"
    assert (INPUTS - "a" - "b") == Inputs(exclude=("b", "a"))


def test_hash_error_from_inputs_names_the_argument_and_the_fixes() -> None:
    with pytest.raises(HashError) as info:
        DEFAULT.compute_key(CTX, {"x": 1, "conn": threading.Lock()})
    message = str(info.value)
    for expected in ("'conn'", "_thread.lock", "Inputs(exclude=['conn'])", "INPUTS - 'conn'",
                     "cache_key_fn", "NO_CACHE"):
        assert expected in message


def test_inputs_exclude_rejects_non_names() -> None:
    with pytest.raises(ConfigurationError, match="exclude"):
        Inputs(exclude=[1])  # type: ignore[list-item]


def test_subtracting_a_non_string_raises_type_error() -> None:
    for policy in (INPUTS, TASK_SOURCE, DEFAULT, NO_CACHE):
        with pytest.raises(TypeError, match="INPUTS - 'client'"):
            policy - 1  # type: ignore[operator]


def test_subtraction_is_a_no_op_on_policies_without_inputs() -> None:
    assert TASK_SOURCE - "x" == TASK_SOURCE
    assert RUN_ID - "x" == RUN_ID
    assert NO_CACHE - "x" == NO_CACHE


def test_subtraction_reaches_every_inputs_part_of_a_compound() -> None:
    policy = DEFAULT - "client"
    inputs_with = {"x": 1, "client": threading.Lock()}
    assert policy.compute_key(CTX, inputs_with) == DEFAULT.compute_key(CTX, {"x": 1})


# -- task identity, TASK_SOURCE, RUN_ID, FLOW_PARAMETERS --------------------------------


@pytest.mark.parametrize("policy", [INPUTS, TASK_SOURCE, RUN_ID, DEFAULT, INPUTS + FLOW_PARAMETERS])
def test_builtin_keys_include_the_task_identity(policy: CachePolicy) -> None:
    ours = policy.compute_key(CTX, {"x": 1})
    theirs = policy.compute_key(ctx(task_name="pkg.mod.evaluate"), {"x": 1})
    assert ours is not None and theirs is not None
    assert ours != theirs


def test_task_source_key_follows_the_source_text() -> None:
    key = TASK_SOURCE.compute_key(CTX, {"x": 1})
    assert TASK_SOURCE.compute_key(CTX, {"x": 2}) == key
    assert TASK_SOURCE.compute_key(ctx(task_source="def train(x, y=2): ..."), {"x": 1}) != key
    assert TASK_SOURCE.compute_key(ctx(task_source=""), {"x": 1}) is None


def test_run_id_is_the_flow_run_else_the_call() -> None:
    in_run = RUN_ID.compute_key(ctx(run_id="run-1", call_id="a"), {})
    assert in_run == RUN_ID.compute_key(ctx(run_id="run-1", call_id="b"), {})
    assert in_run != RUN_ID.compute_key(ctx(run_id="run-2", call_id="a"), {})
    # Outside a flow every call has its own id, so two calls never share a key.
    assert RUN_ID.compute_key(ctx(call_id="a"), {}) != RUN_ID.compute_key(ctx(call_id="b"), {})


def test_default_is_inputs_task_source_and_run_id() -> None:
    assert DEFAULT == INPUTS + TASK_SOURCE + RUN_ID
    assert DEFAULT == RUN_ID + INPUTS + TASK_SOURCE
    parts = DEFAULT.key_parts(CTX, {"x": 1})
    assert parts is not None and set(parts) == {"inputs", "task_source", "run_id"}
    # Outside a flow DEFAULT never hits across calls (its RUN_ID is the call id).
    assert DEFAULT.compute_key(ctx(call_id="1"), {"x": 1}) != DEFAULT.compute_key(ctx(call_id="2"), {"x": 1})


def test_flow_parameters_key_follows_the_flow_run_parameters() -> None:
    key = FLOW_PARAMETERS.compute_key(ctx(flow_parameters={"day": "mon", "n": 1}), {})
    assert key == FLOW_PARAMETERS.compute_key(ctx(flow_parameters={"n": 1, "day": "mon"}), {})
    assert key != FLOW_PARAMETERS.compute_key(ctx(flow_parameters={"day": "tue", "n": 1}), {})
    assert FLOW_PARAMETERS.compute_key(CTX, {}) is None  # outside a flow
    with pytest.raises(HashError, match="'client'"):
        FLOW_PARAMETERS.compute_key(ctx(flow_parameters={"client": threading.Lock()}), {})


# -- NO_CACHE, compounds ----------------------------------------------------------------


def test_no_cache_computes_no_key_and_is_the_identity_of_addition() -> None:
    assert NO_CACHE.compute_key(CTX, {"x": 1}) is None
    assert NO_CACHE.key_parts(CTX, {"x": 1}) is None
    for policy in (INPUTS, TASK_SOURCE, DEFAULT, Inputs(exclude=["x"])):
        assert NO_CACHE + policy == policy
        assert policy + NO_CACHE == policy
    assert NO_CACHE + NO_CACHE == NO_CACHE
    assert isinstance(NO_CACHE, NoCache)


def test_compounds_flatten_merge_inputs_and_drop_duplicates() -> None:
    policy = (INPUTS - "a") + TASK_SOURCE + (Inputs(exclude=["b"]) + TASK_SOURCE + RUN_ID)
    assert isinstance(policy, CompoundCachePolicy)
    kinds = [type(part) for part in policy.policies]
    assert sorted(k.__name__ for k in kinds) == ["Inputs", "RunId", "TaskSource"]
    (inputs,) = [p for p in policy.policies if isinstance(p, Inputs)]
    assert set(inputs.exclude) == {"a", "b"}
    assert TASK_SOURCE + TASK_SOURCE == TASK_SOURCE
    assert INPUTS + INPUTS == INPUTS


ATOMS: list[CachePolicy] = [INPUTS, TASK_SOURCE, RUN_ID, FLOW_PARAMETERS, Inputs(exclude=["y"])]


@settings(max_examples=100, deadline=None)
@given(st.permutations(ATOMS), st.integers(min_value=1, max_value=len(ATOMS)))
def test_composition_order_never_changes_the_key(order: list[CachePolicy], split: int) -> None:
    context = ctx(run_id="r", flow_parameters={"p": 1})
    inputs = {"x": 1, "y": 2}
    reference = CompoundCachePolicy(policies=tuple(ATOMS))
    left = CompoundCachePolicy(policies=tuple(order[:split]))
    right = CompoundCachePolicy(policies=tuple(order[split:]))
    grouped = left + right
    chained = order[0]
    for part in order[1:]:
        chained = chained + part
    expected = reference.compute_key(context, inputs)
    assert grouped.compute_key(context, inputs) == expected
    assert chained.compute_key(context, inputs) == expected
    assert chained == reference


def test_all_orders_of_default_give_one_key() -> None:
    keys = set()
    for order in itertools.permutations([INPUTS, TASK_SOURCE, RUN_ID]):
        keys.add((order[0] + order[1] + order[2]).compute_key(CTX, {"x": 1}))
        keys.add((order[0] + (order[1] + order[2])).compute_key(CTX, {"x": 1}))
    assert len(keys) == 1


def test_a_lone_policy_and_its_compound_give_the_same_key() -> None:
    assert CompoundCachePolicy(policies=(INPUTS,)).compute_key(CTX, {"x": 1}) == INPUTS.compute_key(
        CTX, {"x": 1}
    )


def test_compound_whose_parts_all_give_none_gives_none() -> None:
    policy = FLOW_PARAMETERS + TASK_SOURCE
    assert policy.compute_key(ctx(task_source=""), {"x": 1}) is None
    assert policy.key_parts(ctx(task_source=""), {"x": 1}) is None
    # One part with a key is enough.
    assert policy.compute_key(CTX, {"x": 1}) is not None


@dataclass(frozen=True)
class Broken(CachePolicy):
    def compute_key(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> str | None:
        raise RuntimeError("backend down")


@dataclass(frozen=True)
class Version(CachePolicy):
    version: str = "1"

    def compute_key(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> str | None:
        return self.version


def test_a_failing_part_never_silently_drops_out_of_a_compound() -> None:
    with pytest.raises(RuntimeError, match="backend down"):
        (INPUTS + Broken()).compute_key(CTX, {"x": 1})
    with pytest.raises(HashError):
        (TASK_SOURCE + INPUTS).compute_key(CTX, {"x": threading.Lock()})


def test_custom_policies_compose_and_change_the_key() -> None:
    v1 = (INPUTS + Version("1")).compute_key(CTX, {"x": 1})
    v2 = (INPUTS + Version("2")).compute_key(CTX, {"x": 1})
    assert v1 != v2
    both = Version("1") + Version("2") + INPUTS
    assert both.compute_key(CTX, {"x": 1}) == (Version("2") + INPUTS + Version("1")).compute_key(
        CTX, {"x": 1}
    )
    parts = both.key_parts(CTX, {"x": 1})
    assert parts is not None and len(parts) == 3


# -- cache_key_fn ----------------------------------------------------------------------


def test_cache_key_fn_key_is_used_as_given() -> None:
    seen: list[tuple[CacheKeyContext, dict[str, Any]]] = []

    def key_fn(context: CacheKeyContext, parameters: dict[str, Any]) -> str | None:
        seen.append((context, parameters))
        return f"reports/{parameters['day']}"

    policy = CacheKeyFnPolicy(key_fn)
    assert policy.compute_key(CTX, {"day": "mon"}) == "reports/mon"
    # Two tasks share the key on purpose: no task identity is mixed in.
    assert policy.compute_key(ctx(task_name="other.task"), {"day": "mon"}) == "reports/mon"
    assert seen[0] == (CTX, {"day": "mon"})
    assert CachePolicy.from_cache_key_fn(key_fn) == policy


def test_cache_key_fn_returning_none_means_do_not_cache() -> None:
    policy = CacheKeyFnPolicy(lambda context, parameters: None)
    assert policy.compute_key(CTX, {}) is None
    assert policy.key_parts(CTX, {}) is None


@pytest.mark.parametrize("bad", ["", 42, b"bytes"])
def test_cache_key_fn_invalid_keys_raise_configuration_error(bad: Any) -> None:
    # Keys unusable as storage keys ("a//b") are refused where they meet storage: the
    # task call (tests/front_door/test_tasks.py); this layer knows nothing of storage.
    policy = CacheKeyFnPolicy(lambda context, parameters: bad)
    with pytest.raises(ConfigurationError) as info:
        policy.compute_key(CTX, {})
    assert repr(bad) in str(info.value)


def test_cache_key_fn_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="callable"):
        CacheKeyFnPolicy("not a function")  # type: ignore[arg-type]


# -- configure --------------------------------------------------------------------------


def test_configure_returns_a_copy_and_never_mutates_constants() -> None:
    before = [(p, p.key_storage, p.isolation_level, p.lock_manager) for p in (INPUTS, DEFAULT, NO_CACHE)]
    configured = INPUTS.configure(key_storage="/tmp/keys", isolation_level="SERIALIZABLE", lock_manager="lm")
    assert configured is not INPUTS
    assert (configured.key_storage, configured.isolation_level, configured.lock_manager) == (
        "/tmp/keys", "SERIALIZABLE", "lm"
    )
    DEFAULT.configure(lock_manager="lm2")
    NO_CACHE.configure(isolation_level="SERIALIZABLE")
    after = [(p, p.key_storage, p.isolation_level, p.lock_manager) for p in (INPUTS, DEFAULT, NO_CACHE)]
    assert before == after
    assert INPUTS.lock_manager is None and DEFAULT.isolation_level is None
    # Unset options keep their configured value.
    assert configured.configure(lock_manager="other").key_storage == "/tmp/keys"
    # Configuration does not change the key.
    assert configured.compute_key(CTX, {"x": 1}) == INPUTS.compute_key(CTX, {"x": 1})


def test_configure_isolation_level_accepts_the_enum_or_its_name_only() -> None:
    from resultkit._enums import IsolationLevel as LeafIsolationLevel
    from resultkit.transactions import IsolationLevel

    assert IsolationLevel is LeafIsolationLevel  # one enum, re-exported by transactions
    assert INPUTS.configure(isolation_level="serializable").isolation_level is IsolationLevel.SERIALIZABLE
    assert INPUTS.configure(isolation_level=IsolationLevel.READ_COMMITTED).isolation_level is (
        IsolationLevel.READ_COMMITTED
    )
    with pytest.raises(ConfigurationError, match=r"SERIALISABLE.*READ_COMMITTED, SERIALIZABLE"):
        INPUTS.configure(isolation_level="SERIALISABLE")


def test_configuration_survives_composition() -> None:
    policy = INPUTS.configure(isolation_level="SERIALIZABLE") + TASK_SOURCE.configure(lock_manager="lm")
    assert policy.isolation_level == "SERIALIZABLE"
    assert policy.lock_manager == "lm"
    assert (NO_CACHE.configure(key_storage="k") + INPUTS).key_storage == "k"
    assert (policy - "x").isolation_level == "SERIALIZABLE"


def test_adding_conflicting_configuration_raises_value_error_naming_both() -> None:
    with pytest.raises(ValueError) as info:
        INPUTS.configure(isolation_level="READ_COMMITTED") + TASK_SOURCE.configure(isolation_level="SERIALIZABLE")
    message = str(info.value)
    assert "isolation_level" in message and "READ_COMMITTED" in message and "SERIALIZABLE" in message
    same = INPUTS.configure(lock_manager="lm") + TASK_SOURCE.configure(lock_manager="lm")
    assert same.lock_manager == "lm"


def test_policy_classes_have_their_constants() -> None:
    assert INPUTS == Inputs()
    assert TASK_SOURCE == TaskSource()
    assert RUN_ID == RunId()
    assert FLOW_PARAMETERS == FlowParameters()
    assert Inputs.__module__ == "resultkit.cache_policies"


def test_adding_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        INPUTS + "x"  # type: ignore[operator]


def test_policies_pickle_with_cloudpickle() -> None:
    import pickle

    import cloudpickle

    policy = (DEFAULT - "client").configure(isolation_level="SERIALIZABLE")
    assert pickle.loads(cloudpickle.dumps(policy)) == policy
    fn_policy = CacheKeyFnPolicy(lambda context, parameters: "k")
    assert pickle.loads(cloudpickle.dumps(fn_policy)).compute_key(CTX, {}) == "k"


def test_a_policy_class_must_define_how_it_computes_keys():
    with pytest.raises(TypeError, match="must define compute_key"):

        class Empty(CachePolicy):
            pass

    with pytest.raises(TypeError, match="base class"):
        CachePolicy().compute_key(CacheKeyContext(task_name="t", task_source="", call_id="c"), {})
