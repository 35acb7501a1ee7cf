"""Shared test fixtures for the llm-common workspace (never published)."""

__all__: list[str] = []
