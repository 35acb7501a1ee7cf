"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import llm_common_testkit


def test_all_names_resolve() -> None:
    for name in llm_common_testkit.__all__:
        assert getattr(llm_common_testkit, name) is not None, name


def test_contract_module_names_resolve() -> None:
    from llm_common_testkit import contract, costs

    for module in (contract, costs):
        assert module.__all__, module
        for name in module.__all__:
            assert getattr(module, name) is not None, name
    assert {"StoreContract", "GenericStoreContract", "ContractViolation"} <= set(contract.__all__)
