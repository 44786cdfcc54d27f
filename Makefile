# cti: two commands on a fresh Debian 12 machine.
#   make run   - set up what is missing, then run the demo hotline (config/cti.yaml)
#   make test  - set up what is missing, then run every test
CONFIG ?= config/cti.yaml
PYTEST_ARGS ?=

.PHONY: run test setup lint unit e2e clean

setup:
	@./scripts/setup.sh

run: setup
	.venv/bin/cti check-config --config $(CONFIG)
	.venv/bin/cti serve --config $(CONFIG)

# ruff, then the type checker (its settings: [tool.mypy] in pyproject.toml); the
# load generator (scripts/load, a package run with -m) is type-checked too
lint: setup
	.venv/bin/ruff check cti plugins tests scripts
	.venv/bin/mypy cti plugins
	.venv/bin/mypy --explicit-package-bases -p scripts.load

# Browser tests run in their own pytest process: pytest-playwright and
# pytest-asyncio clash in one (later async tests fail on a running loop).
test: setup lint
	.venv/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/browser -p no:playwright $(PYTEST_ARGS)
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/browser \
		--screenshot=only-on-failure --output=test-artifacts/browser-failures

unit: setup
	.venv/bin/python -m pytest -q tests/unit

clean:
	rm -rf var .pytest_cache
