"""Rollout: sticky by key, uniform, monotone in the percentage, configured by environment."""

from __future__ import annotations

import pytest
from analysis_pipeline import InvalidInputError, RolloutFlag, rollout
from hypothesis import given
from hypothesis import strategies as st


@given(st.text(min_size=1), st.floats(min_value=0, max_value=100))
def test_sticky(key: str, percent: float) -> None:
    assert rollout(key, percent) == rollout(key, percent)


@given(st.text(min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_raising_the_percentage_never_moves_a_key_back(key: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert not rollout(key, low) or rollout(key, high)


def test_extremes() -> None:
    keys = [f"bill-{i}" for i in range(500)]
    assert not any(rollout(k, 0) for k in keys)
    assert all(rollout(k, 100) for k in keys)


@pytest.mark.parametrize("percent", [10, 30, 50, 90])
def test_uniform_share(percent: float) -> None:
    keys = [f"CA-AB{i}-2026" for i in range(20_000)]
    share = sum(rollout(k, percent) for k in keys) / len(keys) * 100
    assert abs(share - percent) < 1.5


def test_salts_split_independently() -> None:
    keys = [f"u{i}" for i in range(4000)]
    a = {k for k in keys if rollout(k, 50, salt="a")}
    b = {k for k in keys if rollout(k, 50, salt="b")}
    assert 0.4 < len(a & b) / len(a) < 0.6


@pytest.mark.parametrize(
    ("env", "percent"),
    [
        ({}, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK": "false"}, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK": "false", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "10"}, 10.0),
        ({"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "50%"}, 50.0),
        ({"USE_NEW_LLM_FRAMEWORK": "true", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "50"}, 100.0),
        ({"USE_NEW_LLM_FRAMEWORK": "TRUE"}, 100.0),
    ],
)
def test_from_env(env: dict[str, str], percent: float) -> None:
    assert RolloutFlag.from_env(env).percent == percent


@pytest.mark.parametrize(
    "env",
    [
        {"USE_NEW_LLM_FRAMEWORK": "maybe"},
        {"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "lots"},
        {"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "150"},
        {"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "nan"},
    ],
)
def test_bad_configuration_is_a_typed_error(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError):
        RolloutFlag.from_env(env)


def test_flag_routes_like_rollout() -> None:
    flag = RolloutFlag(25)
    assert [flag.enabled_for(f"k{i}") for i in range(50)] == [
        rollout(f"k{i}", 25) for i in range(50)
    ]
