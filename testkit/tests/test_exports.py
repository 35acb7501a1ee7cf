"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import llm_common_testkit


def test_all_names_resolve() -> None:
    for name in llm_common_testkit.__all__:
        assert getattr(llm_common_testkit, name) is not None, name


def test_contract_module_names_resolve() -> None:
    from llm_common_testkit import contract

    expected = {
        "BACKEND_KINDS",
        "CheckEnv",
        "ContractBackend",
        "ContractViolation",
        "GenericStoreContract",
        "StoreContract",
        "check_aclose_idempotent",
        "check_corrupt_local_file",
        "check_no_secret",
        "check_unreachable",
    }
    assert set(contract.__all__) == expected
    for name in contract.__all__:
        assert getattr(contract, name) is not None, name
