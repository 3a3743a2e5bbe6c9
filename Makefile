# The two commands of the quickstart: `make demo` and `make test`. Each does its own set-up.
.PHONY: setup demo test unit integration lint bench clean conformance

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	.venv/bin/python -m pytest -n 2 tests

unit: setup
	.venv/bin/python -m pytest -n 2 tests/unit

integration: setup
	.venv/bin/python -m pytest tests/integration

# The public TUF conformance suite against vcomp's TUF client (not part of `make test`).
conformance: setup
	bash scripts/conformance.sh

bench: setup
	.venv/bin/python bench/package.py

clean:
	rm -rf images out .vcomp-cache
