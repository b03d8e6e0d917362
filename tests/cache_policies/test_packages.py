"""Packages(...) and Packages.auto(): keys on installed distribution versions."""

from __future__ import annotations

import importlib.metadata

import pytest

from resultkit import ConfigurationError, task
from resultkit.cache_policies import CODE, INPUTS, CacheKeyContext, Packages
from resultkit.cache_policies.packages import distributions_of

CONTEXT = CacheKeyContext(task_name="m.fit", task_source="def fit(): ...")


def test_explicit_distributions_key_on_their_installed_versions() -> None:
    parts = Packages("numpy", "PyYAML").key_parts(CONTEXT, {})
    assert parts == {"packages": {"numpy": importlib.metadata.version("numpy"),
                                  "pyyaml": importlib.metadata.version("PyYAML")}}


def test_names_are_normalised_and_deduplicated() -> None:
    assert Packages("Scikit_Learn", "scikit-learn", "NumPy").distributions == ("numpy", "scikit-learn")
    assert Packages("numpy", "pandas") == Packages("pandas", "numpy")


def test_a_distribution_that_is_not_installed_is_a_configuration_error_with_a_hint() -> None:
    with pytest.raises(ConfigurationError, match=r"'yaml' is a module of distribution 'PyYAML'"):
        Packages("yaml").key_parts(CONTEXT, {})
    with pytest.raises(ConfigurationError, match="'no-such-dist-xyz' is not installed"):
        Packages("no-such-dist-xyz").compute_key(CONTEXT, {})


@pytest.mark.parametrize("bad", [[], [""], [3], ["numpy", None]])
def test_bad_names_are_refused_at_construction(bad: list[object]) -> None:
    with pytest.raises(ConfigurationError, match="Packages"):
        Packages(*bad)  # type: ignore[arg-type]


def test_auto_uses_the_distributions_the_traced_code_imports(tmp_path) -> None:
    import numpy as np
    import yaml

    def helper(x):
        return yaml.safe_dump(x)

    @task(cache_policy=INPUTS + Packages.auto(), result_storage=str(tmp_path))
    def fit(x):
        return float(np.mean(x)), helper(x)

    state = fit([1, 2], return_state=True)
    assert state.name == "Completed"
    from resultkit.results import ResultStore

    parts = ResultStore(str(tmp_path)).metadata(state.cache_key).extra["key_parts"]
    assert parts["packages_auto"] == {"numpy": np.__version__, "pyyaml": yaml.__version__}
    assert fit([1, 2], return_state=True).name == "Cached"


def test_auto_and_explicit_compose_with_code() -> None:
    policy = CODE + Packages("numpy") + Packages.auto() + INPUTS
    assert policy == INPUTS + Packages.auto() + Packages("numpy") + CODE
    configured = Packages("numpy").configure(key_storage="elsewhere")
    assert configured.key_storage == "elsewhere" and configured.distributions == ("numpy",)


def test_namespace_modules_map_to_the_distribution_that_holds_them() -> None:
    assert distributions_of(("numpy.linalg", "yaml")) == ("numpy", "pyyaml")
    assert distributions_of(("json", "not_a_module_anywhere")) == ()
