# socketcad: two commands set everything up on a fresh machine.
#   make demo   create .venv, install, run the main job on a bundled sample limb
#   make test   install test needs and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/socketcad demo --out $(OUT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_capture.py
	$(BIN)/python benchmarks/bench_rectify.py
	$(BIN)/python benchmarks/bench_socket.py

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
