"""CODE in one process: what the trace covers, where it stops, and how it travels to workers."""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import pytest

from resultkit import task
from resultkit.cache_policies import CODE, INPUTS, TASK_SOURCE, CacheKeyContext, Code
from resultkit.cache_policies._source import source_digest
from resultkit.cache_policies._trace import trace_code
from resultkit.cache_policies.code import CodeCapture


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Write modules into a fresh project directory and import them."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(tmp_path)  # the tasks' result_storage="results" lands here
    written: list[str] = []

    def load(name: str, source: str) -> ModuleType:
        (root / f"{name}.py").write_text(textwrap.dedent(source).lstrip("\n"))
        written.append(name)
        importlib.invalidate_caches()
        return importlib.import_module(name)

    yield load
    for name in written:
        sys.modules.pop(name, None)


def test_digest_ignores_comments_whitespace_and_docstrings_but_not_code(modules: Any) -> None:
    plain = modules("plain_v", "def f(x, y=2):\n    return x + y\n")
    styled = modules("styled_v", '''
        # leading comment
        def f(x,   y = 2):  # trailing comment
            """A docstring."""

            return (x +
                    y)
    ''')
    changed = modules("changed_v", "def f(x, y=2):\n    return x - y\n")
    default = modules("default_v", "def f(x, y=3):\n    return x + y\n")
    assert source_digest(plain.f) == source_digest(styled.f)
    assert source_digest(plain.f) != source_digest(changed.f)
    assert source_digest(plain.f) != source_digest(default.f)


def test_constants_keep_their_types_in_the_digest(modules: Any) -> None:
    one = modules("int_v", "def f():\n    return 1\n")
    one_float = modules("float_v", "def f():\n    return 1.0\n")
    true = modules("bool_v", "def f():\n    return True\n")
    assert len({source_digest(one.f), source_digest(one_float.f), source_digest(true.f)}) == 3


def test_the_trace_follows_project_code_and_stops_at_installed_and_standard_code(modules: Any) -> None:
    modules("util_t", '''
        import functools
        import json

        LIMIT = (1, 2.5, "x")

        @functools.lru_cache(maxsize=None)
        def cached_helper(x):
            return json.dumps(x)

        class Box:
            @staticmethod
            def make(x):
                return [x] * LIMIT[0]

            @property
            def size(self):
                return measure(self)

        def measure(box):
            return 1
    ''')
    main = modules("main_t", '''
        import numpy as np
        import util_t
        from util_t import Box

        def run(x):
            from util_t import cached_helper
            import numpy.linalg as la
            values = [util_t.LIMIT for _ in range(2)]
            return cached_helper(x), Box.make(x), np.mean(values), la.norm, len(values)
    ''')
    trace = trace_code(main.run)
    assert set(trace.helpers) == {"util_t:cached_helper", "util_t:Box", "util_t:measure"}
    assert set(trace.constants) == {"util_t:LIMIT"}
    assert trace.modules == ("numpy", "numpy.linalg")
    assert trace.unresolved == () and trace.untracked == {}


def test_what_cannot_be_tracked_is_named(modules: Any) -> None:
    main = modules("untracked_t", '''
        import threading
        TABLE = {"a": 1}
        LOCK = threading.Lock()

        def run(x):
            with LOCK:
                return TABLE[x] + not_defined_anywhere
    ''')
    trace = trace_code(main.run)
    assert trace.untracked == {"untracked_t:LOCK": "a lock", "untracked_t:TABLE": "a dict"}
    assert trace.unresolved == ("untracked_t:not_defined_anywhere",)


def test_a_helper_defined_after_the_task_is_found_on_first_use(modules: Any, tmp_path: Path) -> None:
    main = modules("forward_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE

        @task(cache_policy=CODE, result_storage="results")
        def run(x):
            return later(x)

        def later(x):
            return x
    ''')
    capture = main.run.captured["code"]
    assert isinstance(capture, CodeCapture)
    assert "forward_t:later" in capture.trace.helpers
    assert capture.trace.unresolved == ()


def test_a_task_calling_another_task_traces_through_it(modules: Any) -> None:
    main = modules("tasks_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        def inner_helper(x):
            return x + 1

        @task(cache_policy=INPUTS, result_storage="results")
        def inner(x):
            return inner_helper(x)

        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def outer(x):
            return inner(x)
    ''')
    assert set(main.outer.captured["code"].trace.helpers) == {"tasks_t:inner", "tasks_t:inner_helper"}


def test_code_composes_like_the_other_policies() -> None:
    assert INPUTS + CODE == CODE + INPUTS
    assert INPUTS + CODE + CODE == INPUTS + CODE
    assert (CODE - "x") is CODE
    configured = CODE.configure(isolation_level="SERIALIZABLE")
    assert configured is not CODE and isinstance(configured, Code) and CODE.isolation_level is None


def test_a_hand_built_context_falls_back_to_the_source_text() -> None:
    context = CacheKeyContext(task_name="m.f", task_source="def f(x):\n    return x  # one\n")
    restyled = CacheKeyContext(task_name="m.f", task_source="def f( x ):\n    return x  # two\n")
    assert CODE.compute_key(context, {}) == CODE.compute_key(restyled, {})
    assert CODE.compute_key(CacheKeyContext(task_name="m.f", task_source=""), {}) is None


def test_two_tasks_with_equal_code_have_their_own_keys(modules: Any) -> None:
    main = modules("keys_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def a(x):
            return x

        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def b(x):
            return x
    ''')
    assert main.a.explain(1).cache_key != main.b.explain(1).cache_key
    assert main.a(1, return_state=True).name == "Completed"
    assert main.a(1, return_state=True).name == "Cached"


def _key_in_worker(payload: bytes, x: int) -> str:
    t = cloudpickle.loads(payload)
    return str(t.explain(x).cache_key)


def test_the_capture_travels_to_a_spawned_worker_that_has_no_source(
        modules: Any, tmp_path: Path) -> None:
    main = modules("shipped_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        def helper(x):
            return x * 2

        @task(cache_policy=INPUTS + CODE, result_storage=RESULTS)
        def run(x):
            return helper(x)
    '''.replace("RESULTS", repr(str(tmp_path / "results"))))
    key_here = main.run.explain(3).cache_key
    cloudpickle.register_pickle_by_value(main)
    try:
        payload = cloudpickle.dumps(main.run)
    finally:
        cloudpickle.unregister_pickle_by_value(main)
    (tmp_path / "project" / "shipped_t.py").unlink()  # the worker cannot read (or import) it
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_key_in_worker, payload, 3).result(timeout=120) == key_here


def test_with_options_keeps_the_capture(modules: Any) -> None:
    main = modules("options_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE

        def helper():
            return 1

        @task(cache_policy=CODE, result_storage="results")
        def run():
            return helper()
    ''')
    copy = main.run.with_options(refresh_cache=True)
    assert copy.captured["code"] is main.run.captured["code"]
    assert task(cache_policy=TASK_SOURCE)(main.run.fn).captured == {}


def test_a_callable_instance_and_a_partial_are_traced_through_their_code(modules: Any) -> None:
    main = modules("callables_t", '''
        import functools

        def scale(x, k):
            return x * k

        class Model:
            def __call__(self, x):
                return scale(x, 2)

        half = functools.partial(scale, k=0.5)

        def run(x):
            return Model()(x) + half(x)
    ''')
    trace = trace_code(main.run)
    assert set(trace.helpers) == {"callables_t:Model", "callables_t:scale"}
    assert set(trace.constants) == {"callables_t:half.<argument 0>"}
    assert trace_code(main.Model()).helpers == {"callables_t:scale": source_digest(main.scale)}


def test_an_object_that_cannot_be_inspected_is_named_not_fatal(modules: Any) -> None:
    modules("lazy_t", '''
        def __getattr__(name):
            raise RuntimeError(f"lazy attribute {name} failed to load")
    ''')
    main = modules("uses_lazy_t", '''
        import lazy_t

        def run(x):
            return lazy_t.model(x)
    ''')
    trace = trace_code(main.run)
    assert trace.untracked == {"uses_lazy_t:lazy_t": "could not be inspected: RuntimeError"}


def test_packages_auto_alone_adds_no_code_notes(modules: Any) -> None:
    main = modules("auto_only_t", '''
        import numpy as np
        from resultkit import task
        from resultkit.cache_policies import INPUTS, Packages

        TABLE = {"a": 1}

        @task(cache_policy=INPUTS + Packages.auto(), result_storage="results")
        def run(x):
            return float(np.mean([TABLE["a"], x]))
    ''')
    assert main.run(1) == 1.0
    assert main.run.explain(1).notes == []


def test_a_dask_worker_computes_the_key_the_driver_captured(
        modules: Any, tmp_path: Path, dask_client: Any) -> None:
    main = modules("on_dask_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        def helper(x):
            return x * 3

        @task(cache_policy=INPUTS + CODE, result_storage=RESULTS)
        def run(x):
            return helper(x)
    '''.replace("RESULTS", repr(str(tmp_path / "results"))))
    cloudpickle.register_pickle_by_value(main)  # the workers cannot import the module
    try:
        state = dask_client.submit(main.run, 4, return_state=True, pure=False).result(timeout=120)
    finally:
        cloudpickle.unregister_pickle_by_value(main)
    assert state.name == "Completed" and state.result() == 12
    here = main.run(4, return_state=True)
    assert here.name == "Cached" and here.cache_key == state.cache_key


def test_a_task_that_is_a_method_traces_its_class(modules: Any) -> None:
    main = modules("method_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        def shared(x):
            return x

        class Model:
            def helper(self, x):
                return shared(x) * 2

            @task(cache_policy=INPUTS + CODE, result_storage="results")
            def predict(self, x):
                return self.helper(x)
    ''')
    trace = main.Model.predict.captured["code"].trace
    assert set(trace.helpers) == {"method_t:Model", "method_t:shared"}
    assert trace.unresolved == ()


def test_two_closures_of_one_factory_keep_both_constants(modules: Any) -> None:
    main = modules("factory_t", '''
        def make(k):
            def scale(x):
                return x * k
            return scale

        double, triple = make(2), make(3)

        def run(x):
            return double(x) + triple(x)
    ''')
    assert len(trace_code(main.run).constants) == 2


def test_code_outside_the_source_roots_is_named_and_roots_can_be_added(
        modules: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "shared-lib"
    elsewhere.mkdir()
    (elsewhere / "sharedlib_t.py").write_text("def tool(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(elsewhere))
    main = modules("uses_shared_t", '''
        import sharedlib_t

        def run(x):
            return sharedlib_t.tool(x)
    ''')
    try:
        trace = trace_code(main.run)
        assert trace.helpers == {}
        assert trace.untracked == {"uses_shared_t:sharedlib_t": "code outside the project's source roots; "
                                                                "add its directory to RESULTKIT_CODE_ROOTS"}
        monkeypatch.setenv("RESULTKIT_CODE_ROOTS", str(elsewhere))
        assert set(trace_code(main.run).helpers) == {"sharedlib_t:tool"}
    finally:
        sys.modules.pop("sharedlib_t", None)


def test_imports_inside_a_function_of_a_package_are_followed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "src"
    (root / "pkgi_t" / "sub").mkdir(parents=True)
    (root / "pkgi_t" / "__init__.py").write_text("")
    (root / "pkgi_t" / "sub" / "__init__.py").write_text("")
    (root / "pkgi_t" / "sub" / "ops.py").write_text("def twice(x):\n    return 2 * x\n")
    (root / "pkgi_t" / "helpers.py").write_text("def clean(x):\n    return x\n")
    (root / "pkgi_t" / "main.py").write_text(textwrap.dedent('''
        def run(x):
            from .helpers import clean
            from . import helpers as h
            import pkgi_t.sub.ops as ops
            return clean(x) + h.clean(x) + ops.twice(x)
    '''))
    monkeypatch.syspath_prepend(str(root))
    try:
        main = importlib.import_module("pkgi_t.main")
        importlib.import_module("pkgi_t.sub.ops")
        assert set(trace_code(main.run).helpers) == {"pkgi_t.helpers:clean", "pkgi_t.sub.ops:twice"}
    finally:
        for name in [m for m in sys.modules if m.startswith("pkgi_t")]:
            sys.modules.pop(name)


def test_a_function_bound_in_a_class_body_is_traced(modules: Any) -> None:
    main = modules("class_attr_t", '''
        def squared_error(a, b):
            return (a - b) ** 2

        class Model:
            loss = staticmethod(squared_error)

            def score(self, a, b):
                return self.loss(a, b)

        def run(a, b):
            return Model().score(a, b)
    ''')
    assert set(trace_code(main.run).helpers) == {"class_attr_t:Model", "class_attr_t:squared_error"}


def test_a_nested_class_follows_what_its_methods_name(modules: Any) -> None:
    main = modules("nested_t", '''
        def tokenize(text):
            return text.split()

        class Pipeline:
            class Step:
                def apply(self, text):
                    return tokenize(text)

        def run(text):
            return Pipeline.Step().apply(text)
    ''')
    assert set(trace_code(main.run).helpers) == {"nested_t:Pipeline", "nested_t:tokenize"}


def test_compiled_keys_of_code_and_packages_equal_compute_key(modules: Any) -> None:
    from resultkit.cache_policies import Packages
    from resultkit.cache_policies._compiled import compile_key

    main = modules("compiled_t", '''
        def helper(x):
            return x

        def run(x, y=2):
            return helper(x) + y
    ''')
    captured = {"code": CodeCapture(main.run)}
    context = CacheKeyContext(task_name="compiled_t.run", task_source="def run(x, y=2): ...",
                              captured=captured)
    for policy in (INPUTS + CODE, INPUTS + CODE + TASK_SOURCE + Packages("numpy"),
                   CODE + Packages.auto(), INPUTS + Packages("numpy") + Packages.auto()):
        compiled = compile_key(policy, context.task_name, context.task_source, ["x", "y"],
                               captured=captured)
        assert compiled is not None, policy
        assert compiled.of_args((1, 2)) == policy.compute_key(context, {"x": 1, "y": 2})
        assert compiled.of_inputs({"x": "a", "y": None}) == policy.compute_key(context, {"x": "a", "y": None})


def test_a_code_task_takes_the_compiled_hit_path_once_its_trace_is_final(
        modules: Any, tmp_path: Path) -> None:
    from resultkit._call import plan_for

    main = modules("hot_t", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        def above(x):
            return x

        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def ready(x):
            return above(x)

        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def waiting(x):
            return below(x)

        def below(x):
            return x
    ''')
    assert plan_for(main.ready).compiled is not None
    assert plan_for(main.waiting).compiled is None  # `below` was not bound at decoration
    key = main.waiting(1, return_state=True).cache_key  # the first call resolves it
    plan = plan_for(main.waiting)
    assert plan.compiled is not None and plan.compiled.of_args((1,)) == key
    assert main.waiting(1, return_state=True).name == "Cached"
