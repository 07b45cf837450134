# socketcad: two commands set everything up on a fresh machine.
#   make demo   create .venv, install, run the main job on a bundled sample limb
#   make test   install test needs and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

# CHOLMOD (SuiteSparse) for scikit-sparse's sparse Cholesky, OpenBLAS under it (the reference BLAS
# is 15 times slower); PostgreSQL, whose server the clinic tests start (a throwaway cluster of their
# own, tests/postgres.py); EGL and Mesa's software rasteriser, on which VTK renders the report's
# pictures with no screen and no GPU; pango and a font for WeasyPrint's PDF. Debian's packages,
# installed when missing. The tests also open the reports in Debian's chromium (TEST_PACKAGES).
SYSTEM_PACKAGES := libsuitesparse-dev libopenblas0-pthread postgresql libegl1 libegl-mesa0 libgl1-mesa-dri \
	libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
TEST_PACKAGES := chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo serve test test-slow bench fuzz clean frontend

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.system: | $(BIN)/python
	dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); }
	touch $@

$(VENV)/.test-system: | $(BIN)/python
	dpkg -s $(TEST_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES); }
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.system | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The clinic web app's front end (frontend/: three.js, bundled by esbuild) built into the package's
# static/ folder (not committed). npm ci installs the lock file's pinned versions from the npm registry,
# the only network it needs; Debian's nodejs and npm are installed first when node or npm is missing.
STATIC := src/socketcad/web/static/app.js
FRONTEND_SOURCES := $(wildcard frontend/src/*) frontend/build.mjs

frontend/node_modules/.ci: frontend/package.json frontend/package-lock.json
	command -v node >/dev/null && command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd frontend && npm ci --no-audit --no-fund
	touch $@

$(STATIC): $(FRONTEND_SOURCES) frontend/node_modules/.ci
	node frontend/build.mjs

frontend: $(STATIC)

demo: $(VENV)/.installed $(STATIC)
	$(BIN)/socketcad demo --out $(OUT)

# The clinic web application on this machine, with the demo clinic in out/serve (sign in as demo /
# socketcad-demo at http://127.0.0.1:8000).
SERVE_DATA ?= out/serve
serve: $(VENV)/.installed $(STATIC)
	$(BIN)/socketcad serve --demo --data $(SERVE_DATA)

# Two workers, one test file each at a time (module fixtures are built once): the suite is half
# single-threaded work (CLI processes, meshing), so two processes on two cores finish sooner. Files
# go out in collection order, slowest first (tests/conftest.py), not xdist's most-tests-first.
# One OpenBLAS thread per worker: two workers on two cores, each with OpenBLAS's own threads, spin against each
# other (test_interface_limb.py and test_realscan.py on two workers, the same session: 12:26 with OpenBLAS's
# default threads, sys 6:56; 9:25 with one, sys 2:04).
test: $(VENV)/.installed $(VENV)/.test-system $(STATIC)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=10

# The tests marked slow (minutes each: the interface analysis of the bone-less scan's sockets).
test-slow: $(VENV)/.installed $(VENV)/.test-system $(STATIC)
	$(BIN)/python -m pytest -q -m slow --durations=10

bench: $(VENV)/.installed $(STATIC)
	$(BIN)/python benchmarks/bench_capture.py
	$(BIN)/python benchmarks/bench_rectify.py
	$(BIN)/python benchmarks/bench_socket.py
	$(BIN)/python benchmarks/bench_interface.py
	$(BIN)/python benchmarks/bench_followup.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_web.py --seconds 60

# Ten minutes of mutated inputs (every mesh format, AOP, tape, plan, landmarks, spec, evaluation, case
# archive) through the CLI on two workers; counts per kind printed, failing inputs kept in out/fuzz.
FUZZ_SEED ?= 19
fuzz: $(VENV)/.installed
	$(BIN)/python fuzzing/campaign.py --minutes 10 --workers 2 --seed $(FUZZ_SEED) --out out/fuzz

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info frontend/node_modules src/socketcad/web/static
