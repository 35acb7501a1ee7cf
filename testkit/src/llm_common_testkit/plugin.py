"""Pytest plugin: fixtures shared by every llm-common package's tests."""
