"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import llm_client


def test_version_comes_from_metadata() -> None:
    assert llm_client.__version__ == importlib.metadata.version("llm-client")


def test_all_names_resolve() -> None:
    for name in llm_client.__all__:
        assert hasattr(llm_client, name), name


def test_config_error_is_the_deprecated_name_of_configuration_error() -> None:
    import pytest

    with pytest.warns(DeprecationWarning, match="ConfigurationError"):
        old = llm_client.ConfigError
    assert old is llm_client.ConfigurationError
    assert issubclass(old, llm_client.LLMClientError)
    assert "ConfigError" not in llm_client.__all__


def test_the_shared_vocabulary() -> None:
    """Names every llm-common package spells the same way (COMMON.md)."""
    error = llm_client.RateLimitError("slow down", provider="p", model="m")
    assert error.status_code == 429
    assert llm_client.ServerError("x", status_code=503).status_code == 503
    assert llm_client.BudgetExceededError.is_budget_refusal is True
    assert issubclass(llm_client.ConfigurationError, llm_client.LLMClientError)
