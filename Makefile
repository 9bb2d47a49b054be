# Executable Deep Learning — every command a reader, learner or instructor needs.
# `make book` and `make test` do all set-up themselves on a fresh machine.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
# the full site, or with SOLUTIONS=0 the course site, which has a folder of its own
SITE         = $(if $(filter 0,$(SOLUTIONS)),_build/course/_build/html,_build/html)
# the whole book as one PDF, beside the site it is printed from: _build/pdf/book.pdf
PDF          = $(dir $(SITE))pdf/book.pdf
MATHJAX     := _vendor/mathjax/tex-chtml-full.js
# npm packages (vendor/package.json): MathJax, which the site serves, and axe-core, which the tests inject
NODE_MODULES := vendor/node_modules/.package-lock.json
AXE         := vendor/node_modules/axe-core/axe.min.js
SOLUTIONS   ?= 1
JOBS        ?= 2
# progress bars are for people at a notebook, not for the site build or the tests
export BOOK_PROGRESS := 0

.PHONY: help setup vendor book pdf lab serve test lint bench assign clean

help:
	@echo "make book    build the site into $(SITE) (first run installs everything)"
	@echo "make pdf     the whole book as one PDF: $(PDF)"
	@echo "make test    run the whole test suite"
	@echo "make lab     open the chapters and exercises in JupyterLab"
	@echo "make serve   serve the built site on http://localhost:8000"
	@echo "make bench   time every notebook (_build/bench.md) and the grader"
	@echo "make book SOLUTIONS=0   build the course site (no solutions) into _build/course/_build/html"

setup: $(VENV)/.installed vendor

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || { \
	  echo "error: '$(PYTHON) -m venv' is not available. Install it first, e.g. on Debian/Ubuntu:"; \
	  echo "       sudo apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@# make `import book` work from any folder, in notebooks and kernels alike
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'executable_deep_learning.pth').write_text('$(CURDIR)\n')"
	@# JupyterLab inside this environment opens MyST .md notebooks as notebooks (jupytext), not as text,
	@# and does not ask to fetch news from the internet
	mkdir -p $(VENV)/share/jupyter/lab/settings
	printf '%s\n' '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}, "@jupyterlab/apputils-extension:notification": {"checkForUpdates": false, "fetchNews": "false"}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

vendor: $(MATHJAX) $(AXE)

$(NODE_MODULES): vendor/package.json vendor/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed to fetch MathJax and axe-core; install Node.js (apt-get install npm)"; exit 1; }
	cd vendor && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(AXE): $(NODE_MODULES)
	touch $@

$(MATHJAX): $(NODE_MODULES)
	rm -rf _vendor/mathjax && mkdir -p _vendor/mathjax/output/chtml
	cd vendor/node_modules/mathjax/es5 && cp -r tex-chtml-full.js a11y sre ui $(CURDIR)/_vendor/mathjax/ \
	  && cp -r output/chtml/fonts $(CURDIR)/_vendor/mathjax/output/chtml/
	touch $@

book: setup
	$(PY) -m book.site --solutions $(SOLUTIONS)
	@echo "(or run 'make serve$(if $(filter 0,$(SOLUTIONS)), SOLUTIONS=0)')"

# prints the built site (no notebook runs again); needs Chromium (see README)
pdf: book
	$(PY) -m book.pdf --site $(SITE) --out $(PDF) --copy-to-site

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR) --ServerApp.default_url=/lab/tree/chapters

serve:
	@test -f $(SITE)/index.html || { echo "no site yet in $(SITE): run 'make book' first"; exit 1; }
	$(PY) -m http.server 8000 --bind 127.0.0.1 --directory $(SITE)

test: setup
	@$(PY) -m tests.system
	$(PY) -m pytest -n $(JOBS) --dist loadfile

lint: setup
	$(VENV)/bin/ruff check book tests

assign: setup
	$(PY) -m book assign

bench: setup
	$(PY) -m book.bench --out _build/bench.md
	$(PY) -m book.bench --grading 100 | tee _build/bench-grading.txt

clean:
	rm -rf _build
