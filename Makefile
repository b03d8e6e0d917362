# The two commands: `make demo` and `make test`. Each sets itself up.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Prefect 3 for tests/compat/prefect/test_under_prefect.py: its pins conflict with ours.
PREFECT_VENV  := .venv-prefect
PREFECT_STAMP := $(PREFECT_VENV)/.installed-stamp
PREFECT_REQS  := tests/compat/prefect/prefect-requirements.txt
export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT := false
export AWS_EC2_METADATA_DISABLED := true

.PHONY: test demo bench lint typecheck unit redis-server clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,bench]"
	@touch $(STAMP)

$(PREFECT_STAMP): pyproject.toml $(PREFECT_REQS)
	@test -x $(PREFECT_VENV)/bin/python || python3 -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/pip install -q --disable-pip-version-check -r $(PREFECT_REQS) -e .
	@touch $(PREFECT_STAMP)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }

lint: $(STAMP)
	$(VENV)/bin/ruff check resultkit tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy resultkit

unit: $(STAMP) $(PREFECT_STAMP) redis-server
	$(PY) -m pytest -q -p no:cacheprovider

test: lint typecheck unit

demo: $(STAMP)
	$(PY) examples/demo.py

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(PREFECT_VENV) .resultkit-demo .mypy_cache .ruff_cache
