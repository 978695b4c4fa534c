# Every target sets up .venv itself when it is missing or stale.
PY      := .venv/bin/python
STAMP   := .venv/.installed
BENCH   := .venv/.bench-installed
DOCS    := .venv/.docs-installed
OUT     ?= runs/demo

.PHONY: demo test docs bench parity quality zoo chromium screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

$(BENCH): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	# torch-lucent pins an old kornia; it runs with today's kornia (the benchmark aliases two names).
	$(PY) -m pip install -q --no-deps torch-lucent==0.1.8
	$(PY) -m pip install -q kornia decorator ipython
	touch $(BENCH)

# Headless Chromium for the report's rendering test (Debian package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser test will be skipped"; }

demo: $(STAMP)
	.venv/bin/netgaze demo --out $(OUT)

# One PNG per page of `netgaze serve`, driven in headless Chromium: the demo's runs when they
# exist (make demo first), else tiny runs trained on the spot.
screenshots: $(STAMP) chromium
	$(PY) tests/serve/browser_tour.py --out $(OUT)/screenshots $(patsubst %/run.json,%,$(wildcard $(OUT)/*/run.json))

test: $(STAMP) chromium
	.venv/bin/lint-imports
	$(PY) -m pytest

# The documentation site (mkdocs.yml, docs/): --strict fails on a broken link or reference or a
# docstring mkdocstrings cannot read; the pages land in site/.
$(DOCS): $(STAMP)
	$(PY) -m pip install -q -e '.[test,docs]'
	touch $(DOCS)

docs: $(DOCS)
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict -d site

bench: $(BENCH)
	$(PY) benchmarks/run_all.py

# Every method a peer library also has, run side by side with the peer: benchmarks/results/parity.json
parity: $(BENCH)
	$(PY) benchmarks/parity.py
	$(PY) benchmarks/parity_own_cases.py
	$(PY) benchmarks/parity_table.py

# Every torchvision classifier and the common timm families: writes benchmarks/results/zoo.json
# and the README's model table (long: about an hour on a few CPU cores).
zoo: $(STAMP)
	$(PY) benchmarks/zoo.py

quality: $(STAMP)
	$(PY) benchmarks/run_all.py --quality

clean:
	rm -rf .venv build site src/*.egg-info
