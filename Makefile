# Two entry points for a fresh machine: `make demo` (main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS := -q --disable-pip-version-check -c constraints.txt

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -e ".[lab,ray,ot,test,lightning,images]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/vicinal compare --dataset spirals --out results/demo

test: install
	$(PY) -m pytest -n 2 -q

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) results .pytest_cache
