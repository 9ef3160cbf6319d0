# The README's two commands: `make serve` and `make test`.
PYTHON ?= python3
PORT ?= 8080

.PHONY: install serve test deps lint typecheck pytest bench demo

install:
	$(PYTHON) -m pip install -q -e '.[test,postgres]'

serve: install
	analysisd serve --host 127.0.0.1 --port $(PORT)

# A loopback Prometheus scraping a demo service; one canary passes, one fails (docs/quickstart.md).
demo: install
	command -v prometheus >/dev/null || bash scripts/install-test-deps.sh
	analysisd demo

deps: install
	bash scripts/install-test-deps.sh

lint:
	ruff check analysisd providers tests bench
	ruff format --check analysisd providers tests bench
	lint-imports

typecheck:
	mypy

pytest:
	$(PYTHON) -m pytest -q -p no:cacheprovider

test: deps lint typecheck pytest

bench:
	for f in bench/bench_*.py; do $(PYTHON) $$f || exit 1; done
