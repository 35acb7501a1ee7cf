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
    ("env", "enabled", "percent", "effective"),
    [
        ({}, None, 0.0, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK": ""}, None, 0.0, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK": "false"}, False, 0.0, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK": "false", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "10"}, False,
         10.0, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK": " Off ", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "90"}, False,
         90.0, 0.0),
        ({"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "50%"}, None, 50.0, 50.0),
        ({"USE_NEW_LLM_FRAMEWORK": "true", "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "50"}, True,
         50.0, 100.0),
        ({"USE_NEW_LLM_FRAMEWORK": "TRUE"}, True, 0.0, 100.0),
        ({"USE_NEW_LLM_FRAMEWORK": "1"}, True, 0.0, 100.0),
    ],
)  # fmt: skip
def test_from_env(
    env: dict[str, str], enabled: bool | None, percent: float, effective: float
) -> None:
    flag = RolloutFlag.from_env(env)
    assert (flag.enabled, flag.percent, flag.effective_percent) == (enabled, percent, effective)
    assert flag.source == "env"


@pytest.mark.parametrize("off", ["false", "0", "off", "no", "FALSE", " Off "])
def test_kill_switch_beats_any_percentage(off: str) -> None:
    keys = [f"CA-AB{i}-2026" for i in range(2000)]
    assert sum(RolloutFlag.from_env({"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "25"}).routes(k)
               for k in keys) > 400  # fmt: skip
    for percent in ("25", "100"):
        flag = RolloutFlag.from_env(
            {"USE_NEW_LLM_FRAMEWORK": off, "USE_NEW_LLM_FRAMEWORK_PERCENTAGE": percent}
        )
        assert sum(flag.routes(k) for k in keys) == 0


def test_switched_on_routes_every_key() -> None:
    flag = RolloutFlag(0, enabled=True)
    assert all(flag.routes(f"k{i}") for i in range(2000))


@pytest.mark.parametrize(
    "env",
    [
        {"USE_NEW_LLM_FRAMEWORK": "maybe"},
        {"USE_NEW_LLM_FRAMEWORK": "flase"},
        {"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "lots"},
        {"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "150"},
        {"USE_NEW_LLM_FRAMEWORK_PERCENTAGE": "nan"},
    ],
)
def test_bad_configuration_is_a_typed_error(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        RolloutFlag.from_env(env)
    assert next(iter(env)) in str(caught.value)


def test_flag_routes_like_rollout() -> None:
    flag = RolloutFlag(25)
    assert [flag.routes(f"k{i}") for i in range(50)] == [rollout(f"k{i}", 25) for i in range(50)]
    assert [flag.enabled_for(f"k{i}") for i in range(50)] == [
        flag.routes(f"k{i}") for i in range(50)
    ]
