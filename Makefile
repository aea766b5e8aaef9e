# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench help-cache clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/thermal-explain demo --output_dir demo_output

test: $(STAMP)
	$(BIN)/ruff check thermal_explain tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check thermal_explain tests benchmarks
	$(BIN)/ruff format --check thermal_explain tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_cam.py
	$(BIN)/python benchmarks/bench_pipeline.py

# fit/validate/predict --help without importing torch: re-render after changing the code.
help-cache: $(STAMP)
	$(BIN)/python -m thermal_explain.cli.help_cache

clean:
	rm -rf $(VENV) demo_output interpretability_analysis .pytest_cache .ruff_cache
