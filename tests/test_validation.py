"""Bad-input messages of ``ZeroGrads`` and the helpers in ``zerograds._validation``.

Each message names the argument, the value received and what is expected, and the tests pin
all three parts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import zerograds as zg
from zerograds._validation import (
    check_bounds,
    check_inside_bounds,
    check_x0,
    to_float_array,
    to_value,
    to_values,
)

X0 = [1.0, 2.0, 3.0]


# ---------------------------------------------------------------------- constructor arguments

CONSTRUCTOR_CASES: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"sigma": 0.0}, ValueError, r"`sigma` must be a finite number > 0, got 0\.0"),
    ({"sigma": -1.0}, ValueError, r"`sigma` must be a finite number > 0, got -1\.0"),
    ({"sigma": math.inf}, ValueError, r"`sigma` must be a finite number > 0, got inf"),
    ({"sigma": "1"}, TypeError, r"`sigma` must be a real number, got '1'"),
    ({"sigma": True}, TypeError, r"`sigma` must be a real number, got True"),
    ({"lr": 0.0}, ValueError, r"`lr` must be a finite number > 0, got 0\.0"),
    ({"batch_size": 0}, ValueError, r"`batch_size` must be an integer >= 1, got 0"),
    ({"batch_size": -3}, ValueError, r"`batch_size` must be an integer >= 1, got -3"),
    ({"batch_size": 2.0}, TypeError, r"`batch_size` must be an integer >= 1, got 2\.0"),
    ({"theta_steps": 0}, ValueError, r"`theta_steps` must be an integer >= 1, got 0"),
    ({"surrogate_steps": -1}, ValueError, r"`surrogate_steps` must be an integer >= 0, got -1"),
    ({"replay": 0}, ValueError, r"`replay` must be an integer >= 1, got 0"),
    ({"replay": 2.5}, TypeError, r"`replay` must be an integer >= 1, got 2\.5"),
    (
        {"replay_radius": 0.0},
        ValueError,
        r"`replay_radius` must be a number > 0 or math\.inf, got 0\.0",
    ),
    ({"replay_radius": "far"}, TypeError, r"`replay_radius` must be a real number, got 'far'"),
    ({"surrogate_lr": -0.1}, ValueError, r"`surrogate_lr` must be a finite number > 0, got -0\.1"),
    ({"smoothing": -0.1}, ValueError, r"`smoothing` must be a finite number >= 0, got -0\.1"),
    (
        {"max_nonfinite_iterations": 0},
        ValueError,
        r"`max_nonfinite_iterations` must be an integer >= 1, got 0",
    ),
    ({"seed": -1}, ValueError, r"`seed` must be an integer >= 0, got -1"),
    ({"seed": 1.5}, TypeError, r"`seed` must be an integer >= 0, got 1\.5"),
    ({"antithetic": 1}, TypeError, r"`antithetic` must be a bool, got 1"),
    (
        {"dtype": torch.int64},
        TypeError,
        r"`dtype` must be a floating torch\.dtype, got torch\.int64",
    ),
    (
        {"step_order": "fit_last"},
        ValueError,
        r"`step_order` must be one of 'fit_first', 'step_first', got 'fit_last'",
    ),
    (
        {"input_normalization": "global"},
        ValueError,
        r"`input_normalization` must be one of 'local', .*'none', got 'global'",
    ),
    (
        {"value_normalization": "rank"},
        ValueError,
        r"`value_normalization` must be one of 'batch', .*'none', got 'rank'",
    ),
    (
        {"input_normalization": "bounds"},
        ValueError,
        r"`input_normalization`='bounds' requires `bounds`, got None",
    ),
    (
        {"surrogate": "transformer"},
        ValueError,
        r"`surrogate` must be one of 'mlp', 'reference', 'highdim', 'scalable' or a "
        r"torch\.nn\.Module, got 'transformer'",
    ),
    (
        {"surrogate": "mlp", "surrogate_kwargs": {"hidden": (0,)}},
        ValueError,
        r"`hidden` must be an integer >= 1, got 0",
    ),
    (
        {"optimizer_kwargs": {"lr": 0.1}},
        ValueError,
        r"`optimizer_kwargs` must not contain 'lr'; pass `lr` instead, got \{'lr': 0\.1\}",
    ),
    (
        {"surrogate_optimizer_kwargs": {"lr": 0.1, "betas": (0.9, 0.99)}},
        ValueError,
        r"`surrogate_optimizer_kwargs` must not contain 'lr'; pass `surrogate_lr` instead, "
        r"got \{'lr': 0\.1, 'betas'",
    ),
    (
        {"optimizer": "adam"},
        TypeError,
        r"`optimizer` must be a torch optimizer class, got 'adam'",
    ),
    (
        {"optimizer": lambda params, lr: None},
        TypeError,
        r"`optimizer` must build a torch\.optim\.Optimizer, got None",
    ),
]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    CONSTRUCTOR_CASES,
    ids=[next(iter(options)) + "-" + str(i) for i, (options, _, _) in enumerate(CONSTRUCTOR_CASES)],
)
def test_constructor_rejects(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        zg.ZeroGrads(X0, **options)


X0_CASES: list[tuple[Any, type[Exception], str]] = [
    (
        [[1.0, 2.0], [3.0, 4.0]],
        ValueError,
        r"`x0` must be a non-empty 1-D array, got shape \(2, 2\)",
    ),
    ([], ValueError, r"`x0` must be a non-empty 1-D array, got shape \(0,\)"),
    (np.float64(2.0), ValueError, r"`x0` must be a non-empty 1-D array, got shape \(\)"),
    (torch.zeros(2, 1), ValueError, r"`x0` must be a non-empty 1-D array, got shape \(2, 1\)"),
    ([1.0, math.nan, 2.0], ValueError, r"`x0` must be finite, got nan at index 1"),
    (np.array([1.0, 2.0, -np.inf]), ValueError, r"`x0` must be finite, got -inf at index 2"),
    ("abc", TypeError, r"`x0` must be array-like of numbers, got 'abc'"),
    (None, TypeError, r"`x0` must be array-like of numbers, got None"),
    ([True, False], TypeError, r"`x0` must be array-like of real numbers, got dtype bool"),
    ([1 + 2j, 3.0], TypeError, r"`x0` must be array-like of real numbers, got dtype complex128"),
    (torch.tensor([1 + 2j]), TypeError, r"`x0` must be real, got a complex tensor"),
    ([[1.0], [2.0, 3.0]], TypeError, r"`x0` must be array-like of numbers, got \[\[1\.0\]"),
]


@pytest.mark.parametrize(("x0", "error", "message"), X0_CASES)
def test_x0_rejected(x0: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        zg.ZeroGrads(x0)


BOUNDS_CASES: list[tuple[Any, type[Exception], str]] = [
    (
        ([0.0, 0.0], [5.0, 5.0, 5.0]),
        ValueError,
        r"`bounds` lower must be a number or have shape \(3,\), got shape \(2,\)",
    ),
    (
        (0.0, np.full((3, 1), 5.0)),
        ValueError,
        r"`bounds` upper must be a number or have shape \(3,\), got shape \(3, 1\)",
    ),
    (
        np.zeros((3, 3)),
        ValueError,
        r"`bounds` must be \(lower, upper\) or an array of shape \(3, 2\), got shape \(3, 3\)",
    ),
    (
        (1.0, 0.0),
        ValueError,
        r"`bounds` lower must be <= upper, got lower=1\.0 > upper=0\.0 at index 0",
    ),
    (
        ([0.0, 0.0, 4.0], [5.0, 5.0, 3.5]),
        ValueError,
        r"`bounds` lower must be <= upper, got lower=4\.0 > upper=3\.5 at index 2",
    ),
    (
        (math.nan, 5.0),
        ValueError,
        r"`bounds` lower must not contain NaN, got array\(\[nan, nan, nan\]\)",
    ),
    ("01", TypeError, r"`bounds` must be a pair \(lower, upper\), got '01'"),
    (5.0, TypeError, r"`bounds` must be a pair \(lower, upper\), got 5\.0"),
    ({0: 0.0, 1: 1.0}, TypeError, r"`bounds` must be a pair \(lower, upper\), got \{0: 0\.0"),
    (
        (0.0, "high"),
        TypeError,
        r"`bounds \(upper\)` must be array-like of numbers, got 'high'",
    ),
    (
        (0.0, 2.5),
        ValueError,
        r"`x0` must lie inside `bounds`, got x0\[2\]=3\.0 outside \[0\.0, 2\.5\]",
    ),
    (
        ([1.5, 0.0, 0.0], 10.0),
        ValueError,
        r"`x0` must lie inside `bounds`, got x0\[0\]=1\.0 outside \[1\.5, 10\.0\]",
    ),
]


@pytest.mark.parametrize(("bounds", "error", "message"), BOUNDS_CASES)
def test_bounds_rejected(bounds: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        zg.ZeroGrads(X0, bounds=bounds)


# ---------------------------------------------------------------------- tell


@pytest.fixture
def pending_batch() -> tuple[zg.ZeroGrads, torch.Tensor]:
    opt = zg.ZeroGrads(X0, sigma=0.5, batch_size=2, seed=0)
    return opt, opt.ask()


def test_tell_without_ask() -> None:
    opt = zg.ZeroGrads(X0, batch_size=2, seed=0)

    with pytest.raises(RuntimeError, match=r"tell\(\) was called without a pending ask\(\)"):
        opt.tell(torch.zeros(4, 3), torch.zeros(4))


def test_tell_twice_after_one_ask(pending_batch: tuple[zg.ZeroGrads, torch.Tensor]) -> None:
    opt, points = pending_batch
    opt.tell(points, torch.ones(4))

    with pytest.raises(RuntimeError, match=r"call ask\(\) first"):
        opt.tell(points, torch.ones(4))


def test_tell_points_wrong_shape(pending_batch: tuple[zg.ZeroGrads, torch.Tensor]) -> None:
    opt, points = pending_batch

    with pytest.raises(
        ValueError,
        match=r"`points` must be the \(4, 3\) array returned by ask\(\), got shape \(3, 3\)",
    ):
        opt.tell(points[:3], torch.ones(3))


def test_tell_points_differ(pending_batch: tuple[zg.ZeroGrads, torch.Tensor]) -> None:
    opt, points = pending_batch
    moved = points.clone()
    moved[1, 2] += 0.25

    with pytest.raises(
        ValueError,
        match=r"`points` must be the points returned by the last ask\(\), got points that "
        r"differ by up to 0\.25",
    ):
        opt.tell(moved, torch.ones(4))


def test_tell_points_rounding_accepted(pending_batch: tuple[zg.ZeroGrads, torch.Tensor]) -> None:
    opt, points = pending_batch

    opt.tell(points.double().numpy().astype(np.float32), np.ones(4))

    assert opt.iteration == 1


VALUES_CASES: list[tuple[Any, type[Exception], str]] = [
    (np.ones(3), ValueError, r"`values` must contain 4 numbers, got shape \(3,\)"),
    (torch.ones(5), ValueError, r"`values` must contain 4 numbers, got shape \(5,\)"),
    (np.ones((2, 2)), ValueError, r"`values` must contain 4 numbers, got shape \(2, 2\)"),
    ([1.0, 2.0], ValueError, r"`values` must contain 4 numbers, got shape \(2,\)"),
    (["a", "b", "c", "d"], TypeError, r"`values` must contain real numbers, got dtype <U1"),
    (
        torch.ones(4, dtype=torch.bool),
        TypeError,
        r"`values` must contain real numbers, got dtype torch\.bool",
    ),
    (np.ones(4) * 1j, TypeError, r"`values` must contain real numbers, got dtype complex128"),
    (
        [1.0, None, 2.0, 3.0],
        TypeError,
        r"each entry of `values` must be a real number, got None",
    ),
    (
        [1.0, np.ones(2), 2.0, 3.0],
        TypeError,
        r"`values` must contain 4 real numbers, got \[1\.0, array\(\[1\., 1\.\]\)",
    ),
    (None, TypeError, r"`values` must contain 4 real numbers, got None"),
]


@pytest.mark.parametrize(("values", "error", "message"), VALUES_CASES)
def test_tell_values_rejected(
    pending_batch: tuple[zg.ZeroGrads, torch.Tensor],
    values: Any,
    error: type[Exception],
    message: str,
) -> None:
    opt, points = pending_batch

    with pytest.raises(error, match=message):
        opt.tell(points, values)

    # A rejected tell keeps the batch pending.
    assert torch.equal(opt.ask(), points)
    assert opt.nfev == 0


# ---------------------------------------------------------------------- helpers


def test_check_x0_converts_to_float64() -> None:
    result = check_x0(torch.tensor([1, 2, 3]))

    assert result.dtype == np.float64
    assert result.tolist() == [1.0, 2.0, 3.0]


def test_to_float_array_keeps_values() -> None:
    assert to_float_array("x", [1, 2]).dtype == np.float64
    assert to_float_array("x", np.float32([0.5])).tolist() == [0.5]


@pytest.mark.parametrize(
    ("bounds", "lower", "upper"),
    [
        ((0.0, 1.0), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        (([0.0, -1.0, 2.0], 5.0), [0.0, -1.0, 2.0], [5.0, 5.0, 5.0]),
        ([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [0.0, 2.0, 4.0], [1.0, 3.0, 5.0]),
        ((torch.zeros(3), np.ones(3)), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        ((-math.inf, math.inf), [-math.inf] * 3, [math.inf] * 3),
    ],
)
def test_check_bounds_forms(bounds: Any, lower: list[float], upper: list[float]) -> None:
    result = check_bounds(bounds, 3)

    assert result is not None
    assert result[0].tolist() == lower
    assert result[1].tolist() == upper


def test_check_bounds_none() -> None:
    assert check_bounds(None, 3) is None


def test_check_bounds_two_by_two_is_pair() -> None:
    lower, upper = check_bounds([[0.0, 1.0], [2.0, 3.0]], 2)  # type: ignore[misc]

    assert lower.tolist() == [0.0, 1.0]
    assert upper.tolist() == [2.0, 3.0]


def test_check_inside_bounds_accepts_edges() -> None:
    check_inside_bounds(np.array([0.0, 1.0]), (np.zeros(2), np.ones(2)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        (np.float32(1.5), 1.5),
        (np.int64(4), 4.0),
        (torch.tensor(7.0), 7.0),
        (torch.tensor([[8.0]]), 8.0),
        (np.array([9.0]), 9.0),
    ],
)
def test_to_value_accepts(value: Any, expected: float) -> None:
    assert to_value(value) == expected


def test_to_value_passes_nan() -> None:
    assert math.isnan(to_value(math.nan))
    assert to_value(-math.inf) == -math.inf


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("1.0", TypeError, r"`fun` must return a real number, got '1\.0'"),
        (None, TypeError, r"`fun` must return a real number, got None"),
        (1 + 2j, TypeError, r"`fun` must return a real number, got \(1\+2j\)"),
        (True, TypeError, r"`fun` must return a real number, got True"),
        (np.bool_(False), TypeError, r"`fun` must return a real number, got np\.False_"),
        (torch.tensor(True), TypeError, r"`fun` must return a real number, got tensor\(True\)"),
        (torch.tensor(1j), TypeError, r"`fun` must return a real number, got tensor\("),
        (
            np.array([1.0, 2.0]),
            ValueError,
            r"`fun` must return one number, got an array of shape \(2,\)",
        ),
        (
            torch.ones(2, 2),
            ValueError,
            r"`fun` must return one number, got an array of shape \(2, 2\)",
        ),
        ([1.0], TypeError, r"`fun` must return a real number, got \[1\.0\]"),
    ],
)
def test_to_value_rejects(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        to_value(value)


def test_to_values_shapes() -> None:
    assert to_values([1, 2, 3], 3).tolist() == [1.0, 2.0, 3.0]
    assert to_values(np.ones((3, 1)), 3).shape == (3,)
    assert to_values(torch.ones(1, 3), 3).dtype == torch.float64
    assert to_values([np.float32(1.0), torch.tensor(2.0), 3], 3).tolist() == [1.0, 2.0, 3.0]


def test_to_values_names_fun() -> None:
    with pytest.raises(ValueError, match=r"`fun` must return 4 numbers, got shape \(3,\)"):
        to_values(np.ones(3), 4, "fun")
