"""Compiled keys (the task hit path) equal ``compute_key`` for every input, or are not used."""

from __future__ import annotations

import threading
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
    Inputs,
)
from resultkit.cache_policies._compiled import compile_key
from resultkit.errors import HashError

NAMES = ["x", "y", "alpha", "Z", "a_b", "é", "日本", "_"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=12), st.binary(max_size=8))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3), st.tuples(c, c),
                                                   st.dictionaries(st.text(max_size=4), c, max_size=3)),
                      max_leaves=8)
policies = st.sampled_from(["inputs", "inputs+source", "source", "exclude", "exclude+source"])


def _policy(kind: str, names: list[str]) -> CachePolicy:
    inputs = Inputs(exclude=names[:1]) if kind.startswith("exclude") else INPUTS
    if kind == "source":
        return TASK_SOURCE
    return inputs + TASK_SOURCE if kind.endswith("+source") else inputs


@settings(max_examples=300, deadline=None)
@given(kind=policies, names=st.lists(st.sampled_from(NAMES), unique=True, max_size=4),
       args=st.lists(values, min_size=4, max_size=4), source=st.sampled_from(["", "def f(): ..."]),
       task_name=st.sampled_from(["pkg.mod.f", "mod.é", 'q"uote\\d']))
def test_compiled_keys_equal_compute_key(kind: str, names: list[str], args: list[Any],
                                         source: str, task_name: str) -> None:
    policy = _policy(kind, names)
    compiled = compile_key(policy, task_name, source, names)
    assert compiled is not None
    positional = tuple(args[: len(names)])
    inputs = dict(zip(names, positional, strict=True))
    expected = policy.compute_key(CacheKeyContext(task_name=task_name, task_source=source), inputs)
    assert compiled.of_args(positional) == expected
    assert compiled.of_args(positional) == expected  # again, from its memo
    assert compiled.of_inputs(inputs) == expected


def test_a_single_argument_key_is_type_aware_through_the_memo() -> None:
    compiled = compile_key(INPUTS, "m.f", "", ["x"])
    assert compiled is not None
    keys = [compiled.of_args((value,)) for value in (1, True, 1.0, "1", b"1", 1, "1")]
    assert len(set(keys)) == 5 and keys[0] == keys[5] and keys[3] == keys[6]
    ctx = CacheKeyContext(task_name="m.f", task_source="")
    assert keys[1] == INPUTS.compute_key(ctx, {"x": True})


def test_policies_that_read_more_than_the_arguments_are_not_compiled() -> None:
    for policy in (RUN_ID, FLOW_PARAMETERS, DEFAULT, INPUTS + RUN_ID,
                   CacheKeyFnPolicy(lambda context, parameters: "k")):
        assert compile_key(policy, "m.f", "src", ["x"]) is None


def test_constant_and_absent_keys() -> None:
    ctx = CacheKeyContext(task_name="m.f", task_source="def f(x): ...")
    compiled = compile_key(TASK_SOURCE, ctx.task_name, ctx.task_source, ["x"])
    assert compiled is not None and compiled.of_args((1,)) == TASK_SOURCE.compute_key(ctx, {"x": 1})
    assert compiled.of_inputs({"x": 2}) == compiled.of_args((1,))
    no_source = compile_key(TASK_SOURCE, "m.f", "", ["x"])
    assert no_source is not None and no_source.of_args((1,)) is None
    assert compile_key(NO_CACHE, "m.f", "", ["x"]) is None


def test_an_unhashable_argument_names_itself_on_the_compiled_path() -> None:
    compiled = compile_key(INPUTS, "m.f", "", ["conn", "y"])
    assert compiled is not None
    with pytest.raises(HashError, match="'conn'"):
        compiled.of_args((threading.Lock(), 1))
    single = compile_key(INPUTS, "m.f", "", ["conn"])
    assert single is not None
    with pytest.raises(HashError, match="'conn'"):
        single.of_args((threading.Lock(),))
