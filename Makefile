# The two commands of the README: `make serve` and `make test`. Both set up .venv first.
# Python: the newest of 3.13, 3.12 and 3.11 that runs here (on PATH, or installed by pyenv);
# `make test PYTHON=python3.11 VENV=.venv-3.11` picks one.
PY_VERSIONS ?= 3.13 3.12 3.11
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
PYTHON ?= $(shell for v in $(PY_VERSIONS); do for p in python$$v $(PYENV_VERSIONS)/$$v*/bin/python$$v; do \
	$$p -c '' 2>/dev/null && echo $$p && exit; done; done)
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: serve test wsdl lint fmt clean

$(BIN)/his-pacs-ws: setup.cfg setup.py
	@test -n "$(PYTHON)" || { echo "his-pacs-ws needs Python 3.11, 3.12 or 3.13 (none found)" >&2; exit 1; }
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), "his-pacs-ws needs Python 3.11 to 3.13 (spyne 2.14)"'
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/his-pacs-ws
	$(BIN)/his-pacs-ws serve $(ARGS)

test: $(BIN)/his-pacs-ws
	$(BIN)/python -m pytest $(ARGS)

wsdl: $(BIN)/his-pacs-ws
	$(BIN)/his-pacs-ws wsdl --out wsdl

# What CI checks besides the tests: ruff's lint rules, and mypy on domain/ and services/.
lint: $(BIN)/his-pacs-ws
	$(BIN)/ruff check .
	$(BIN)/mypy

# ruff's formatting and import order, over the tree (CI will check formatting too once the
# tree has been formatted).
fmt: $(BIN)/his-pacs-ws
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .venv-* build *.egg-info
