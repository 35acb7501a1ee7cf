.DEFAULT_GOAL := help
PACKAGES := llm-client web-search cost-tracker conversation-memory analysis-pipeline

.PHONY: help
help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: install
install: ## Install every package and the dev tools into .venv
	uv sync --frozen --all-packages

.PHONY: lint
lint: ## Lint and check formatting
	uv run ruff check . && uv run ruff format --check .

.PHONY: format
format: ## Format the code
	uv run ruff check --fix . && uv run ruff format .

.PHONY: typecheck
typecheck: ## Strict type check of every package's src/
	uv run mypy packages/*/src db/src

.PHONY: test
test: ## Run the whole test suite
	uv run pytest

.PHONY: bench
bench: ## Run every benchmark (prints ratios against in-run baselines)
	@for b in bench/*.py; do echo "== $$b"; uv run python $$b || exit 1; done

.PHONY: build
build: ## Build every package's wheel and sdist into dist/
	@for p in $(PACKAGES); do uv build --package $$p --no-sources -o dist || exit 1; done

.PHONY: ci
ci: ## What CI runs
	bash .ci/run
