# Two entry points a newcomer needs: `make demo` and `make test` (see README).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test check browser postgres clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installed once per change of pyproject.toml (or a new virtual environment): the stamp file records it, so a
# second `make demo` starts serving without running pip.
INSTALLED := $(VENV)/.installed

install: $(INSTALLED)

# torch first, pinned to the CPU wheel, so sentence-transformers does not pull CUDA packages.
$(INSTALLED): pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: install
	$(BIN)/policyqa serve

# Debian's chromium for the Playwright tests (Playwright's own browser download cannot work here).
browser:
	@(test -x /usr/bin/chromium && test -d /usr/share/fonts/opentype/noto) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

# Debian's PostgreSQL server binaries for the tests on a real PostgreSQL (tests/pg_support.py runs its own cluster
# in a temporary directory as an unprivileged user; the package's own cluster is not used).
postgres:
	@(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

test: install browser postgres
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -ra

# The edit-test loop (a few minutes): unit and API tests, without the browser, PostgreSQL and slow full-model tests
# (markers in pyproject.toml). `make test` runs them all.
check: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -ra -m "not browser and not postgres and not slow"

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
