"""Property-based checks: any argument value makes the public API succeed or raise
ValueError/TypeError, never another exception."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zerograds as zg

# Values of every kind, including large integers and non-finite floats. Integer-valued options
# get small integers only, because a huge but valid batch size would just exhaust memory.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.floats(allow_nan=True), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(object()),
    st.just(torch.float16),
    st.just(np.float64(-1.0)),
)
SMALL_INT_VALUE = st.one_of(
    ANY_VALUE.filter(lambda v: not isinstance(v, int) or isinstance(v, bool)),
    st.integers(-3, 4),
)

CONSTRUCTOR_FLOATS = ("sigma", "lr", "surrogate_lr", "smoothing", "replay_radius")
CONSTRUCTOR_INTS = (
    "batch_size",
    "theta_steps",
    "surrogate_steps",
    "replay",
    "max_nonfinite_iterations",
)
CONSTRUCTOR_OTHERS = (
    "seed",
    "bounds",
    "antithetic",
    "step_order",
    "input_normalization",
    "value_normalization",
    "dtype",
)
MINIMIZE_OPTIONS = (
    "on_error",
    "on_nonfinite",
    "penalty",
    "timeout",
    "workers",
    "executor",
    "checkpoint_every",
    "resume",
    "run_name",
    "vectorized",
    "callback",
    "max_retries",
)
ACCEPTED = (ValueError, TypeError)


def quadratic(x: np.ndarray) -> float:
    return float(np.sum((x - 1.0) ** 2))


def check_constructor(name: str, value: object) -> None:
    try:
        zg.ZeroGrads([0.5, -0.5], **{name: value})
    except ACCEPTED:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(CONSTRUCTOR_FLOATS + CONSTRUCTOR_OTHERS), value=ANY_VALUE)
def test_constructor_any_value(name: str, value: object) -> None:
    check_constructor(name, value)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(CONSTRUCTOR_INTS), value=SMALL_INT_VALUE)
def test_constructor_integer_options(name: str, value: object) -> None:
    check_constructor(name, value)


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(ANY_VALUE, st.lists(ANY_VALUE, max_size=3)))
def test_constructor_any_x0(value: object) -> None:
    try:
        zg.ZeroGrads(value)
    except ACCEPTED:
        pass


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(MINIMIZE_OPTIONS), value=SMALL_INT_VALUE)
def test_minimize_any_option(name: str, value: object) -> None:
    if name in ("workers", "executor") and isinstance(value, int) and value > 1:
        value = 1  # a valid pool size only costs start-up time here
    try:
        result = zg.minimize(quadratic, np.zeros(2), max_evals=9, seed=0, **{name: value})
    except ACCEPTED:
        return
    except zg.EvaluationTimeoutError:
        assert name == "timeout"  # a tiny but valid timeout does expire
        return
    assert result.nfev <= 9


@settings(max_examples=40, deadline=None)
@given(value=SMALL_INT_VALUE)
def test_minimize_any_max_evals(value: object) -> None:
    try:
        result = zg.minimize(quadratic, np.zeros(2), max_evals=value, seed=0)
    except ACCEPTED:
        return
    assert result.nfev <= value


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_huge_integer_sigma_rejected(value: int) -> None:
    with pytest.raises(ValueError, match=r"`sigma` must be a finite number > 0"):
        zg.ZeroGrads([0.0], sigma=value)
    assert math.isinf(float("inf"))
