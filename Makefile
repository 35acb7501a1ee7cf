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
	uv run mypy packages/*/src db/src testkit/src

.PHONY: test
test: ## Run the whole test suite
	uv run pytest

.PHONY: bench
bench: ## Run every benchmark (prints ratios against in-run baselines)
	@for b in bench/*.py; do echo "== $$b"; uv run python $$b || exit 1; done

.PHONY: build
build: ## Build every package's wheel and sdist into dist/
	@for p in $(PACKAGES); do uv build --package $$p --no-sources -o dist || exit 1; done

.PHONY: matrix
matrix: ## Each package's tests in an env holding only it and its declared deps
	uv run python scripts/release.py matrix

.PHONY: release-check
release-check: ## Build all wheels, smoke-install each alone, run the matrix, private-index round trip
	uv run python scripts/release.py check

.PHONY: sizes
sizes: ## Measure install size: chat-app combination vs full stack
	uv run python scripts/release.py sizes

.PHONY: release
release: ## Release one package: make release NAME=llm-client INDEX=private
	uv run python scripts/release.py release $(NAME) --index $(or $(INDEX),private)

.PHONY: ci
ci: ## What CI runs
	bash .ci/run
