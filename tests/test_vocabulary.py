"""One idea, one name: the packages spell shared ideas the same way (issue 11, STYLE.md).

Each check reads the public API only. When a package grows a new spelling of an idea another
package already names, this file is where it fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASES = {
    "llm_client": "LLMClientError",
    "web_search": "WebSearchError",
    "cost_tracker": "CostTrackerError",
    "conversation_memory": "ConversationMemoryError",
    "analysis_pipeline": "AnalysisPipelineError",
}
STATEFUL = ["web_search", "cost_tracker", "conversation_memory", "analysis_pipeline"]
STORE_ERRORS = ["StoreError", "StoreUnavailableError", "StoreCorruptError", "MissingExtraError"]
RETRY_FIELDS = ["max_attempts", "initial_wait", "max_wait", "jitter", "max_retry_after"]


def _exceptions(module_name: str) -> dict[str, type[BaseException]]:
    module = importlib.import_module(module_name)
    return {
        name: value
        for name in module.__all__
        if isinstance(value := getattr(module, name), type) and issubclass(value, BaseException)
    }


@pytest.mark.parametrize("module_name", sorted(BASES))
def test_every_error_derives_from_the_package_base(module_name: str) -> None:
    errors = _exceptions(module_name)
    base = errors[BASES[module_name]]
    assert base.__bases__ == (Exception,)
    strays = [name for name, error in errors.items() if not issubclass(error, base)]
    assert not strays, f"{module_name} exports errors outside {base.__name__}: {strays}"


@pytest.mark.parametrize("module_name", sorted(BASES))
def test_configuration_errors_are_named_configuration_error(module_name: str) -> None:
    errors = _exceptions(module_name)
    config_like = {name for name in errors if re.fullmatch(r"Config\w*Error", name)}
    assert config_like <= {"ConfigurationError", "ConfigError"}
    if config_like:
        assert "ConfigurationError" in errors
    if "ConfigError" in errors:  # the deprecated spelling is the same class, not a sibling
        assert errors["ConfigError"] is errors["ConfigurationError"]


@pytest.mark.parametrize("module_name", STATEFUL)
def test_stateful_packages_share_the_store_error_names(module_name: str) -> None:
    errors = _exceptions(module_name)
    missing = [name for name in STORE_ERRORS if name not in errors]
    assert not missing, f"{module_name} lacks {missing}"
    assert issubclass(errors["StoreUnavailableError"], errors["StoreError"])
    assert issubclass(errors["StoreCorruptError"], errors["StoreError"])
    assert issubclass(errors["MissingExtraError"], ImportError)


@pytest.mark.parametrize("module_name", STATEFUL)
def test_store_layout_is_the_same_everywhere(module_name: str) -> None:
    package_dir = Path(importlib.import_module(module_name).__file__ or "").parent
    stores = package_dir / "_stores"
    for name in ("_protocol.py", "local.py", "postgres.py", "supabase.py"):
        assert (stores / name).is_file(), f"{module_name}/_stores/{name} missing"


@pytest.mark.parametrize("module_name", ["llm_client", "web_search"])
def test_provider_errors_carry_status_code(module_name: str) -> None:
    provider_error = _exceptions(module_name)["ProviderError"]
    init = inspect.signature(provider_error.__init__)
    assert "status_code" in init.parameters or "status_code" in dir(provider_error)


@pytest.mark.parametrize("module_name", ["llm_client", "web_search"])
def test_retry_policies_have_the_same_fields(module_name: str) -> None:
    policy = importlib.import_module(module_name).RetryPolicy
    names = [f.name for f in dataclasses.fields(policy) if not f.name.startswith("_")]
    assert [n for n in names if n in RETRY_FIELDS] == RETRY_FIELDS
    assert not {"base", "attempts"} & set(names), "old field names are aliases, not fields"


def test_client_ownership_flag_is_owns_client() -> None:
    """Every public constructor or factory that may close a client it was given says so alike."""
    offenders = []
    for module_name in STATEFUL:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if not inspect.isclass(value):
                continue
            for attr in ("__init__", "from_url", "from_settings", "connect"):
                fn = inspect.getattr_static(value, attr, None)
                fn = getattr(fn, "__func__", fn)
                if fn is None or not callable(fn):
                    continue
                params = inspect.signature(fn).parameters
                odd = [p for p in params if re.search(r"close_client|own_client|owns_pool", p)]
                if odd and "owns_client" not in params:
                    offenders.append(f"{module_name}.{name}.{attr}: {odd}")
    assert not offenders


def test_budget_refusals_declare_themselves() -> None:
    """A refusal is recognised by a class attribute, never by a class-name string."""
    for module_name in ("llm_client", "web_search", "cost_tracker"):
        refusal = _exceptions(module_name)["BudgetExceededError"]
        assert refusal.is_budget_refusal is True  # type: ignore[attr-defined]
    sources = (ROOT / "packages").glob("*/src/**/*.py")
    by_name = [str(p) for p in sources if '__name__ == "BudgetExceededError"' in p.read_text()]
    assert not by_name
