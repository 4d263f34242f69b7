# The two commands of the README: `make demo` and `make test`. Both create or reuse .venv.
# `make mutants`: the mutation check of benchmarks/README.md ("Mutation check"), not part of CI.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint layers format mutants

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: it must come from the CPU build, never the CUDA one.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m eva_depthmask demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The layer contract in pyproject.toml ([tool.importlinter]): lower layers never import higher ones.
layers: $(STAMP)
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Every mutant of training/checkpoint.py, resume.py and sampler.py (epoch order and per-sample
# seeding), metrics.py and losses.py (mutmut names: module.x_function__mutmut_N, module.xǁClassǁmethod__mutmut_N),
# each run against the tests that call the function it changes ([tool.mutmut] in pyproject.toml).
# JOBS mutants at a time, one torch thread each.
JOBS    ?= 2
MUTANTS := 'eva_depthmask.training.checkpoint.*' 'eva_depthmask.training.resume.*' \
           'eva_depthmask.training.sampler.*' 'eva_depthmask.metrics.*' 'eva_depthmask.losses.*'

mutants: $(STAMP)
	$(PY) -c "from importlib.metadata import version; assert version('mutmut').startswith('3.8.')" \
		2>/dev/null || $(PY) -m pip install -q "mutmut==3.8.*"
	rm -rf mutants && mkdir mutants
	@echo "mutmut run: progress in mutants/run.log"
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS) \
		> mutants/run.log 2>&1 || { tail -c 3000 mutants/run.log; exit 1; }
	@echo "Mutants by module and result:"
	@$(VENV)/bin/mutmut results --all true | grep -v ': not checked' | awk -F': ' \
		'{m = $$1; sub(/\.x[_ǁ].*/, "", m); c[m ": " $$2]++} END {for (k in c) print "  " k, c[k]}' | sort
	@echo "Not killed (mutmut show NAME shows one; benchmarks/README.md says why each may live):"
	@$(VENV)/bin/mutmut results | grep -v ': not checked' || echo "  none"
