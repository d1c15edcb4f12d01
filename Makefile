# Every target sets up .venv itself (created if missing, pinned stack + editable minilib).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The kernels of the book and the tests run in notebooks/: a relative MINILIB_DATA would point elsewhere there,
# so it is made absolute once, here.
ifneq ($(strip $(MINILIB_DATA)),)
export MINILIB_DATA := $(abspath $(MINILIB_DATA))
endif

.PHONY: book figures check-book screenshots test test-full-data check-exercise bench reproduce-mnist reproduce-cifar10 reproduce-sr \
	reproduce-compare lab setup clean

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## make book: build the rendered book offline (notebooks executed and cached).
## Chapters that read results/ are re-executed when a result file is newer than their cached execution.
## tools.execute_book runs the uncached notebooks two at a time first; the build then takes them from the cache.
## A failing notebook stops `make book` there: its path, failing cell and error are the last lines printed.
book: $(STAMP)
	@$(BIN)/python -c "from minilib.results import forget_stale_executions as f; \
		[print('re-executing', uri, '(newer results)') for uri in f('_build/.jupyter_cache')]"
	$(BIN)/python -m tools.execute_book --jobs 2
	$(BIN)/jupyter-book build . -n -W --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

## make figures: redraw the figures of the markdown pages (book/figures/*.svg) from minilib's own layers;
## the files are committed, so `make book` does not need this step.
figures: $(STAMP)
	$(BIN)/python -m minilib.figures

## make check-book: check the built book page by page (every _toc.yml page built, figures present, no error
## output, math rendered, nothing loaded from the network) and, in headless Chromium at 1280 px, that nothing on any
## page scrolls sideways or shrinks a figure's text below 9 px (tools/page_fit.py); run it after `make book`.
## It needs Chromium (Debian/Ubuntu: `apt install chromium`) and fails without it.
check-book: $(STAMP)
	REQUIRE_CHROMIUM=1 $(BIN)/pytest tests/test_book_html.py tests/test_book_fit.py

## make screenshots: a full-page PNG of every _toc.yml page of the built book at desktop (1280 px) and phone (390 px)
## width in _build/screenshots/<width>/, taken with headless Chromium; at 1280 px it also lists every block that does
## not fit its column. Run it after `make book`.
screenshots: $(STAMP)
	$(BIN)/python -m tools.screenshots --html _build/html --out _build/screenshots

## make test: unit tests + every notebook under nbval, in quick mode, offline (conftest.py sets MINILIB_OFFLINE=1):
## everything reads the embedded sample or tiny generated files; no data and no network needed.
test: $(STAMP)
	MINILIB_QUICK=1 $(BIN)/pytest

## make test-full-data: only the tests marked full_data, which read the full data sets under $MINILIB_DATA
## (CI: ../shared/data); `make test` skips them where the data is absent.
test-full-data: $(STAMP)
	MINILIB_QUICK=1 $(BIN)/pytest -m full_data tests

## make check-exercise NAME=im2col: run one exercise's checks against your code in minilib/exercises/NAME.py
## and print a verdict (`python -m minilib.exercises list` shows the exercises).
check-exercise: $(STAMP)
	@$(BIN)/python -m minilib.exercises check "$(NAME)"

## make bench: convolution speed vs this machine's sgemm and vs PyTorch, then versatile, filter-basis and full-stack
## layers vs the standard convolution they replace (NumPy and PyTorch), then one training step of the chapter-7
## ResNet-20 with each method (default and measured-fastest formulations) vs the baseline's;
## writes results/bench_{conv,versatile,basis,fullstack,step}.json.
bench: $(STAMP)
	$(BIN)/python benchmarks/conv_benchmark.py --out results/bench_conv.json
	$(BIN)/python benchmarks/versatile_benchmark.py --out results/bench_versatile.json
	$(BIN)/python benchmarks/basis_benchmark.py --out results/bench_basis.json
	$(BIN)/python benchmarks/fullstack_benchmark.py --out results/bench_fullstack.json
	$(BIN)/python benchmarks/step_benchmark.py --out results/bench_step.json

## make reproduce-mnist: train every MNIST run of Versatile Tables 2-3 and MVNet Table 1 / Fig. 2 with the torch
## twins, then the NumPy-backend runs; one JSON per run and seed in results/mnist/. This takes hours on 2 cores.
## It is incremental: runs whose file exists are skipped, so stop it at any time and run it again to continue
## (`python -m minilib.reproduce mnist --list` shows what is done; --runs NAME ... trains a piece).
reproduce-mnist: $(STAMP)
	$(BIN)/python -m minilib.reproduce mnist
	$(BIN)/python -m minilib.reproduce mnist --backend numpy

## make reproduce-cifar10 / reproduce-sr: the small-scale CIFAR-10 ResNet and super-resolution runs
## (results/cifar10/, results/sr/; hours on 2 cores, incremental like reproduce-mnist).
reproduce-cifar10: $(STAMP)
	$(BIN)/python -m minilib.reproduce cifar10

reproduce-sr: $(STAMP)
	$(BIN)/python -m minilib.reproduce sr

## make reproduce-compare: the three methods side by side on the MNIST LeNet at matched budgets of 50, 25 and 12 %
## of the baseline's stored bits, two seeds each (results/compare/; hours on 2 cores, incremental like
## reproduce-mnist; `python -m minilib.reproduce compare --list` shows the plan and the budgets out of reach),
## then times every network in one process (results/compare_timing.json; minutes, best on an idle machine).
reproduce-compare: $(STAMP)
	$(BIN)/python -m minilib.reproduce compare
	$(BIN)/python -m minilib.reproduce compare-timing

## make lab: JupyterLab on the notebooks.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf _build
