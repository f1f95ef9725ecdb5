# The two commands of the README: `make serve` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: serve test wsdl clean

$(BIN)/his-pacs-ws: setup.cfg setup.py constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "his-pacs-ws needs Python 3.11 (spyne 2.14)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

serve: $(BIN)/his-pacs-ws
	$(BIN)/his-pacs-ws serve $(ARGS)

test: $(BIN)/his-pacs-ws
	$(BIN)/python -m pytest $(ARGS)

wsdl: $(BIN)/his-pacs-ws
	$(BIN)/his-pacs-ws wsdl --out wsdl

clean:
	rm -rf $(VENV) build *.egg-info
