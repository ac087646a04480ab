PY ?= python3

.PHONY: setup demo test bench lint

setup:
	@bash scripts/setup.sh

demo: setup  ## the main job: the shipped model on a seeded sample of GSM-8K test
	@bash scripts/demo.sh

test: setup  ## what CI runs
	$(PY) -m ruff check tracelang tests
	$(PY) -m pytest

bench: setup  ## speed claims, each against its baseline in the same run
	$(PY) -m pytest benchmarks/bench_*.py -p no:cacheprovider --benchmark-enable --benchmark-columns=mean,median,ops,rounds --benchmark-sort=mean
