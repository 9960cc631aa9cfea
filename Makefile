# The commands a newcomer types. Each one creates .venv on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SQL_FILES := queries schema

.PHONY: demo test lint migrate bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[binary,test,lint,bench]'
	touch $@

demo: $(VENV)/.installed
	$(PYTHON) examples/demo.py

test: $(VENV)/.installed
	$(PYTHON) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/sqlfluff lint $(SQL_FILES)

# Raw psycopg and SQLAlchemy Core side by side with the facade, in a scratch
# database; docs/benchmarks.md explains the numbers. bench takes minutes.
bench: $(VENV)/.installed
	$(PYTHON) -m benchmarks.run

bench-quick: $(VENV)/.installed
	$(PYTHON) -m benchmarks.run --quick

migrate: $(VENV)/.installed
	$(PYTHON) -m hwlab_sql migrate

clean:
	rm -rf $(VENV) build dist *.egg-info
