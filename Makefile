# The two commands that matter: `make run` and `make test`. Both set up
# everything they need on a fresh machine (Python 3.11, gcc, git).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test build generate bench clean distclean

run: build
	$(PY) -m services.mesh.launcher

test: build
	$(PY) -m pytest -q
	PICTOR_PURE_PYTHON=1 $(PY) -m pytest -q tests/hotpath

bench: build
	$(PY) -m hotpath.bench

# Generated stubs and descriptor (build/gen) and the Cython hot path.
build: $(INSTALLED)
	$(PY) -m services.mesh.codegen
	$(PY) setup.py -q build_ext --inplace

# Rewrite the checked-in files derived from the service registry (a test
# fails while they are stale): envoy/envoy.yaml and docker-compose.yml.
generate: $(INSTALLED)
	$(PY) -m services.mesh.envoy_config
	$(PY) -m services.mesh.compose

$(INSTALLED): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	# The repo and the generated stubs go on the venv's path (no editable install needed).
	$(PY) -c "import sysconfig, pathlib; root = pathlib.Path.cwd(); \
	pathlib.Path(sysconfig.get_paths()['purelib'], 'pictor.pth').write_text(f'{root}\n{root}/build/gen/python\n')"
	touch $@

clean:
	rm -rf build hotpath/*.c hotpath/*.so

distclean: clean
	rm -rf $(VENV) .pictor
