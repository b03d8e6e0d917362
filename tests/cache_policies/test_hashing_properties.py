"""Property tests: equal values built independently agree; values of different types differ."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from resultkit.cache_policies import hash_value

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.complex_numbers(allow_nan=False),
    st.datetimes(),
    st.dates(),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids(),
)
hashable_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))

values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(hashable_scalars, children, max_size=5),
        st.sets(hashable_scalars, max_size=5),
        st.frozensets(hashable_scalars, max_size=5),
    ),
    max_leaves=30,
)


def rebuild(value: Any, rng: random.Random) -> Any:
    """An equal value built from scratch, with dicts and sets filled in another order."""
    if isinstance(value, list):
        return [rebuild(v, rng) for v in value]
    if isinstance(value, tuple):
        return tuple(rebuild(v, rng) for v in value)
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {copy.deepcopy(k): rebuild(v, rng) for k, v in items}
    if isinstance(value, (set, frozenset)):
        items = list(value)
        rng.shuffle(items)
        return type(value)(copy.deepcopy(items))
    return copy.deepcopy(value)


@settings(max_examples=200, deadline=None)
@given(values, st.randoms(use_true_random=False))
def test_equal_values_built_twice_give_equal_keys(value: Any, rng: random.Random) -> None:
    assert hash_value(value) == hash_value(rebuild(value, rng))


@settings(max_examples=300, deadline=None)
@given(scalars, scalars)
def test_scalars_of_different_types_give_different_keys(left: Any, right: Any) -> None:
    if type(left) is not type(right):
        assert hash_value(left) != hash_value(right)
    elif left == right and str(left) == str(right):
        # Equal but differently written values (-0.0 and 0.0, Decimal 1.0 and 1.00) may
        # behave differently downstream, so they are allowed to differ.
        assert hash_value(left) == hash_value(right)


@settings(max_examples=200, deadline=None)
@given(st.lists(scalars, max_size=6))
def test_same_elements_in_another_container_type_give_different_keys(items: list[Any]) -> None:
    keys = {hash_value(list(items)), hash_value(tuple(items))}
    assert len(keys) == 2


@settings(max_examples=200, deadline=None)
@given(values, values)
def test_different_values_give_different_keys(left: Any, right: Any) -> None:
    # Equal-comparing values may still differ in type (1 vs True vs 1.0): only check unequal ones.
    if left != right and repr(left) != repr(right):
        assert hash_value(left) != hash_value(right)
