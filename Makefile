# wiretrace developer entry points. On a fresh machine only python3 (>= 3.11) and make are needed:
# every target creates .venv and installs the project (editable, strict mode) when missing or stale.
# `serve` installs what the server needs at run time (EXTRAS=spark adds an optional extra);
# `test` and the other developer targets install the dev extra (linters, Spark, test tools).
# pip's output goes to .venv/pip.log, shown only when an install fails.
#
#   make serve      run the gRPC server (ARGS="--port 50052" to pass flags)
#   make test       lint + typecheck + pytest
#   make lint | typecheck | proto | proto-baseline | eval | bench-quick | bench | clean

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
EXTRAS ?=
STAMP := $(VENV)/.wiretrace-installed$(EXTRAS:%=-%)
RUNTIME_STAMP := $(VENV)/.wiretrace-installed
DEV_STAMP := $(VENV)/.wiretrace-installed-dev
SOURCES := $(VENV)/.wiretrace-sources
PIP_LOG := $(VENV)/pip.log
SHARED ?= ../shared
ARGS ?=
LINT_PATHS := src server client tests benchmarks proto

.PHONY: serve test lint typecheck pytest proto proto-baseline eval train-rewrite bench-quick bench install clean FORCE

serve: $(STAMP)
	$(BIN)/wiretrace serve $(ARGS)

test: lint typecheck pytest

pytest: $(DEV_STAMP)
	$(BIN)/pytest -q $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

# mypy cannot express the package-dir mapping (server/ -> wiretrace.server), so it checks the
# strict editable install's link tree, where every module sits at its installed name, and the
# tests and benchmarks (packages of the repository root) against it.
typecheck: $(DEV_STAMP)
	@tree=$$(ls -d build/__editable__.wiretrace-* | head -n 1); \
	echo "mypy (link tree $$tree, tests, benchmarks)"; \
	MYPYPATH=$$tree $(BIN)/mypy --explicit-package-bases $$(find $$tree -name '*.py' ! -name '*_pb2*.py' | sort) \
		$$(find tests benchmarks -name '*.py' | sort)

proto: $(DEV_STAMP)
	$(PY) proto/generate.py code

# Refresh the compatibility baseline after a released, intended API addition.
proto-baseline: $(DEV_STAMP)
	$(PY) proto/generate.py descriptors proto/wiretrace/v1/baseline.binpb

eval: $(STAMP)
	@if [ -d $(SHARED)/eval/synthetic-dev ]; then \
		echo "== synthetic-dev"; \
		$(BIN)/wiretrace eval --wire $(SHARED)/eval/synthetic-dev/wire.jsonl.gz \
			--queries $(SHARED)/eval/synthetic-dev/queries.jsonl.gz $(ARGS); \
	else echo "no $(SHARED)/eval/synthetic-dev, skipped"; fi
	@if [ -d $(SHARED)/data/counter ]; then \
		echo "== COUNTER (Urdu)"; \
		$(BIN)/wiretrace eval --wire $(SHARED)/data/counter/wire.jsonl \
			--queries $(SHARED)/data/counter/queries-dev.jsonl $(ARGS); \
	else echo "no $(SHARED)/data/counter, skipped"; fi

# Refit the rewrite model (src/wiretrace/rewrite_model.json) on the labelled sets in $(SHARED):
# prints cross-validated figures, then writes the model. Installs scikit-learn, which only this needs.
train-rewrite: $(STAMP)
	$(PY) -m pip install --quiet 'scikit-learn>=1.4'
	$(PY) -m benchmarks.train_rewrite --write $(ARGS)

# Performance suite (benchmarks/README.md): quick <= 3 min, full <= 15 min on 2 cores.
bench-quick: $(DEV_STAMP)
	$(PY) -m benchmarks.run --profile quick --out benchmarks/results/quick/

bench: $(DEV_STAMP)
	$(PY) -m benchmarks.run --profile full --out benchmarks/results/full/

install: $(DEV_STAMP)

$(PY):
	$(PYTHON) -c 'import sys; sys.exit("wiretrace needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)

# Strict editable installs link each file, so a new or removed module needs a reinstall:
# this list only changes (and triggers one) when the set of files does.
$(SOURCES): FORCE | $(PY)
	@find src server client -name '*.py' -o -name '*.pyi' | grep -v __pycache__ | sort > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi

# $(1): the extras, e.g. [dev]. Quiet unless it fails; then the whole log.
define pip_install
	@echo "installing wiretrace$(1) into $(VENV) (log: $(PIP_LOG))"
	@{ $(PY) -m pip install --upgrade pip && \
	   $(PY) -m pip install --config-settings editable_mode=strict -e '.$(1)'; } > $(PIP_LOG) 2>&1 \
	  || { cat $(PIP_LOG); echo "make: installing wiretrace$(1) failed (log above, in $(PIP_LOG))"; exit 1; }
endef

$(STAMP): pyproject.toml $(SOURCES) | $(PY)
	$(call pip_install,$(if $(EXTRAS),[$(EXTRAS)]))
	@touch $@

# The dev extra includes the runtime, so it also satisfies `make serve`.
$(DEV_STAMP): pyproject.toml $(SOURCES) | $(PY)
	$(call pip_install,[dev])
	@touch $(RUNTIME_STAMP) $@

clean:
	rm -rf build *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache $(VENV)/.wiretrace-* $(PIP_LOG)
