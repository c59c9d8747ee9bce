"""Inputs at the edges of the working dtype's range, and inputs of the wrong kind.

The cases: values, penalties, x0 and bounds beyond the range of the working dtype (float32 by
default), dict and set values, custom surrogate modules with the wrong output shape, and
seeds and devices outside their ranges. Each one used to end in an error from inside torch or
in a silently wrong run.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import zerograds as zg
from zerograds._failure_policy import FailurePolicy
from zerograds._validation import finite_mask, is_finite_in, to_value, to_values

FLOAT32_MAX = float(torch.finfo(torch.float32).max)
# The smallest float64 that the cast to float32 rounds to inf: max + half an ulp of max.
FLOAT32_OVERFLOW = FLOAT32_MAX + 2.0**103


def sphere(x: np.ndarray) -> float:
    return float(np.sum(x**2))


def ask_tell_run(bad: float, dtype: torch.dtype = torch.float32) -> zg.ZeroGrads:
    """Run 12 iterations on the sphere; the first batch's first value is ``bad``."""
    opt = zg.ZeroGrads([1.0, 1.0], seed=0, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zg.NumericsWarning)
        for iteration in range(12):
            points = opt.ask()
            values = (points.double() ** 2).sum(1)
            if iteration == 0:
                values[0] = bad
            opt.tell(points, values)
    return opt


# ---------------------------------------------------------------------- values that overflow


def test_finite_mask_follows_the_cast() -> None:
    below = math.nextafter(FLOAT32_OVERFLOW, 0.0)
    array = np.array([1.0, FLOAT32_MAX, below, FLOAT32_OVERFLOW, -1e39, 1e300, math.nan, math.inf])
    expected = [True, True, True, False, False, False, False, False]
    assert finite_mask(array, torch.float32).tolist() == expected
    cast = torch.from_numpy(array).to(torch.float32)
    assert torch.isfinite(cast).tolist() == expected
    assert finite_mask(array, torch.float64).tolist() == [True] * 6 + [False, False]
    assert finite_mask(np.array([65504.0, 65520.0]), torch.float16).tolist() == [True, False]
    assert is_finite_in(below, torch.float32) is True
    assert is_finite_in(1e39, torch.float32) is False
    assert is_finite_in(1e39, torch.float64) is True
    assert is_finite_in(math.nan, torch.float64) is False


@pytest.mark.parametrize("bad", [1e39, -1e39, 1e300, FLOAT32_OVERFLOW])
def test_tell_treats_overflowing_value_like_nan(bad: float) -> None:
    reference = ask_tell_run(math.nan)
    opt = ask_tell_run(bad)
    assert opt.n_nonfinite == reference.n_nonfinite == 1
    assert torch.equal(opt.x, reference.x)
    assert opt.best_fun == reference.best_fun
    assert all(bool(torch.isfinite(p).all()) for p in opt.surrogate.parameters())
    assert float((opt.x**2).sum()) < 1.0  # θ left [1, 1], whose value is 2


def test_tell_warning_names_the_dtype_range() -> None:
    opt = zg.ZeroGrads([1.0, 1.0], seed=0)
    points = opt.ask()
    values = (points**2).sum(1).double()
    values[3] = 1e39
    message = (
        r"dropped 1 of 8 objective values that were not finite in torch\.float32 "
        r"\(NaN, ±inf or beyond ±3\.403e\+38\) at iteration 0"
    )
    with pytest.warns(zg.NumericsWarning, match=message):
        opt.tell(points, values)
    assert opt.n_nonfinite == 1


def test_float64_keeps_values_above_the_float32_range() -> None:
    opt = ask_tell_run(1e39, dtype=torch.float64)
    assert opt.n_nonfinite == 0
    assert all(bool(torch.isfinite(p).all()) for p in opt.surrogate.parameters())


def test_tell_all_overflowing_counts_as_nonfinite_batch() -> None:
    opt = zg.ZeroGrads([1.0, 1.0], seed=0, max_nonfinite_iterations=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zg.NumericsWarning)
        opt.tell(opt.ask(), [1e39] * 8)
        assert opt.n_nonfinite == 8
        assert torch.equal(opt.x, torch.tensor([1.0, 1.0]))
        with pytest.raises(
            zg.NonFiniteObjectiveError, match=r"no finite value in 2 iterations in a row"
        ):
            opt.tell(opt.ask(), [1e300] * 8)


class ReturnsAtCall:
    """The sphere, except that call number ``at`` (from 1) returns ``value``."""

    def __init__(self, at: int, value: float) -> None:
        self.at, self.value, self.calls = at, value, 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        return self.value if self.calls == self.at else sphere(x)


def test_minimize_skips_overflowing_value_like_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zg.NumericsWarning)
        big = zg.minimize(ReturnsAtCall(3, 1e39), np.ones(3), max_evals=300, seed=0)
        nan = zg.minimize(ReturnsAtCall(3, math.nan), np.ones(3), max_evals=300, seed=0)
    assert big.n_nonfinite == nan.n_nonfinite == 1
    np.testing.assert_array_equal(big.x, nan.x)
    assert big.fun == nan.fun
    assert big.fun < 0.1  # the sphere's value at x0 is 3


def test_minimize_raises_for_overflowing_value_under_raise() -> None:
    message = (
        r"`fun` returned 1e\+39 \(beyond the range of torch\.float32, the optimizer's dtype\) "
        r"at x=array\(\[.*\]\); pass on_nonfinite='skip' or 'penalty'"
    )
    with pytest.raises(zg.NonFiniteObjectiveError, match=message):
        zg.minimize(ReturnsAtCall(2, 1e39), np.ones(3), max_evals=50, seed=0, on_nonfinite="raise")


def test_minimize_penalizes_overflowing_value() -> None:
    result = zg.minimize(
        ReturnsAtCall(2, -1e300),
        np.ones(3),
        max_evals=50,
        seed=0,
        on_nonfinite="penalty",
        penalty=100.0,
    )
    assert result.n_nonfinite == 1
    assert result.n_penalized == 1
    assert math.isfinite(result.best_fun)
    assert result.best_fun >= 0.0


def test_minimize_rejects_penalty_beyond_the_dtype() -> None:
    message = (
        r"`penalty` must be at most 3\.403e\+38 in absolute value, the largest torch\.float32 "
        r"value \(the optimizer's dtype\), got 1e\+300"
    )
    calls = []

    def fun(x: np.ndarray) -> float:
        calls.append(x)
        return math.nan

    with pytest.raises(ValueError, match=message):
        zg.minimize(fun, np.ones(3), on_nonfinite="penalty", penalty=1e300, max_evals=50, seed=0)
    assert calls == []  # rejected before the first evaluation


def test_minimize_float64_accepts_large_penalty() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zg.NumericsWarning)
        result = zg.minimize(
            lambda x: math.nan,
            np.ones(3),
            on_nonfinite="penalty",
            penalty=1e300,
            max_evals=50,
            seed=0,
            dtype=torch.float64,
        )
    assert result.best_fun == 1e300
    assert result.n_penalized == result.nfev


def test_failure_policy_checks_penalty_against_dtype() -> None:
    policy = FailurePolicy(on_nonfinite="penalty", penalty=-1e39)
    policy.check_dtype(torch.float64)
    with pytest.raises(
        ValueError, match=r"`penalty` must be at most 6\.55e\+04 in absolute value.*got 70000"
    ):
        FailurePolicy(on_nonfinite="penalty", penalty=70000).check_dtype(torch.float16)
    with pytest.raises(ValueError, match=r"largest torch\.float32 value .*got -1e\+39"):
        policy.check_dtype(torch.float32)
    with pytest.raises(ValueError, match=r"`penalty` must be finite, got 1000000000"):
        FailurePolicy(on_nonfinite="penalty", penalty=10**400)


# ---------------------------------------------------------------------- infinite bounds


@pytest.mark.parametrize(
    "bounds", [(0.0, math.inf), (-math.inf, 1.0), (-1e39, 1.0), ([0.0, -math.inf], 2.0)]
)
def test_infinite_bounds_default_to_no_input_normalization(bounds: Any) -> None:
    opt = zg.ZeroGrads([0.5, 0.5], bounds=bounds, seed=0)
    assert opt._model.input_map.kind == "none"
    result = zg.minimize(sphere, [0.5, 0.5], bounds=bounds, lr=0.5, max_evals=200, seed=0)
    assert result.fun < 0.05  # the start's value is 0.5


def test_finite_bounds_keep_bounds_normalization() -> None:
    assert zg.ZeroGrads([0.5], bounds=(0.0, 1.0))._model.input_map.kind == "bounds"
    opt = zg.ZeroGrads([0.5], bounds=(-1e39, 1.0), dtype=torch.float64)
    assert opt._model.input_map.kind == "bounds"


def test_infinite_bounds_with_explicit_bounds_normalization_raise() -> None:
    message = (
        r"`input_normalization`='bounds' maps the box of `bounds` onto \[-1, 1\] and needs "
        r"finite bounds, got upper\[1\]=inf; pass input_normalization='none'"
    )
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([0.5, 0.5], bounds=(0.0, [1.0, math.inf]), input_normalization="bounds")
    message = r"got lower\[0\]=-1e\+39, beyond the range of torch\.float32; pass"
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([0.5], bounds=(-1e39, 1.0), input_normalization="bounds")


# ---------------------------------------------------------------------- dict and set values


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({i: 100.0 + i for i in range(8)}, "a mapping"),
        (set(range(8)), "a set"),
        (frozenset(range(8)), "a set"),
    ],
)
def test_tell_rejects_unordered_values(values: Any, kind: str) -> None:
    opt = zg.ZeroGrads([1.0, 1.0], seed=0)
    points = opt.ask()
    message = (
        rf"`values` must be a sequence or array of 8 real numbers in the order of the points, "
        rf"got {kind}: "
    )
    with pytest.raises(TypeError, match=message):
        opt.tell(points, values)
    assert opt.nfev == 0
    assert torch.equal(opt.ask(), points)  # the batch is still pending


def test_vectorized_fun_returning_dict_is_rejected() -> None:
    message = r"`fun` must return a sequence or array of 8 real numbers .* got a mapping: \{0: 5"
    with pytest.raises(TypeError, match=message):
        zg.minimize(
            lambda X: {i: 5.0 for i in range(len(X))},
            np.ones(3),
            max_evals=50,
            vectorized=True,
            seed=0,
        )


def test_values_tensor_shape_is_checked_like_numpy() -> None:
    for bad in (torch.zeros(2, 4), np.zeros((2, 4)), torch.zeros(8, 1, 1)):
        shape = tuple(bad.shape)
        with pytest.raises(
            ValueError, match=rf"`values` must contain 8 numbers, got shape {re_shape(shape)}"
        ):
            to_values(bad, 8)
    assert to_values(torch.arange(8.0).reshape(8, 1), 8).tolist() == list(range(8))
    assert to_values(torch.arange(8.0).reshape(1, 8), 8).tolist() == list(range(8))
    with pytest.raises(TypeError, match=r"`values` must contain real numbers, got a tensor on"):
        to_values(torch.zeros(8, device="meta"), 8)


def re_shape(shape: tuple[int, ...]) -> str:
    return "\\" + str(shape).replace(")", "\\)")


# ---------------------------------------------------------------------- surrogate modules


class Output(nn.Module):
    """A linear module whose output has the shape chosen by ``kind``."""

    def __init__(self, kind: str, inputs: int = 2) -> None:
        super().__init__()
        self.kind = kind
        self.linear = nn.Linear(inputs, 2 if kind == "n2" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        if self.kind == "scalar":
            return y.sum()
        if self.kind == "n":
            return y.squeeze(-1)
        return y


@pytest.mark.parametrize(("kind", "shape"), [("scalar", r"\(\)"), ("n2", r"\(2, 2\)")])
def test_surrogate_with_wrong_output_shape_is_rejected(kind: str, shape: str) -> None:
    message = rf"`surrogate` must map \(n, 2\) inputs to \(n,\) outputs .*got shape {shape} for"
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([1.0, 1.0], surrogate=Output(kind))


def test_surrogate_with_wrong_input_size_is_rejected() -> None:
    message = (
        r"`surrogate` must map \(n, 2\) inputs to \(n,\) outputs, but calling it on a \(2, 2\) "
        r"torch\.float32 input raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    )
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([1.0, 1.0], surrogate=Output("n", inputs=5))


def test_surrogate_returning_non_tensor_is_rejected() -> None:
    class Constant(nn.Module):
        def forward(self, x: torch.Tensor) -> Any:
            return 1.0

    with pytest.raises(ValueError, match=r"\(or \(n, 1\)\), got 1\.0 for a \(2, 2\) input"):
        zg.ZeroGrads([1.0, 1.0], surrogate=Constant())


def test_surrogate_column_output_same_run() -> None:
    runs = []
    for kind in ("n", "n1"):
        torch.manual_seed(3)
        opt = zg.ZeroGrads([1.0, 1.0], surrogate=Output(kind), seed=0)
        for _ in range(5):
            points = opt.ask()
            opt.tell(points, (points**2).sum(1))
        runs.append(opt.x)
    assert torch.equal(runs[0], runs[1])


def test_surrogate_probe_changes_no_state() -> None:
    torch.manual_seed(7)
    module = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1))
    before = {name: value.clone() for name, value in module.state_dict().items()}
    rng_before = torch.get_rng_state()
    opt = zg.ZeroGrads([1.0, 2.0, 3.0], seed=0, surrogate=module)
    assert torch.equal(torch.get_rng_state(), rng_before)
    after = module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert module.training
    # The sampling generator is untouched: the first batch is the one of a preset surrogate.
    assert torch.equal(opt.ask(), zg.ZeroGrads([1.0, 2.0, 3.0], seed=0).ask())


# ---------------------------------------------------------------------- x0 beyond the dtype


def test_x0_beyond_the_dtype_is_rejected() -> None:
    message = (
        r"`x0` must be at most 3\.403e\+38 in absolute value, the largest torch\.float32 value, "
        r"got -1e\+39 at index 1"
    )
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([0.0, -1e39])
    message = r"`x0` must be at most 6\.55e\+04 .* torch\.float16 value, got 70000\.0 at index 0"
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([70000.0], dtype=torch.float16)
    assert zg.ZeroGrads([1e39], dtype=torch.float64).x.item() == 1e39
    assert zg.ZeroGrads([3e38]).x.item() == pytest.approx(3e38)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"sigma": 1e38},
            r"`sigma`=1e\+38 with `smoothing`=0\.1 would put sample points out to about "
            r"\|x0\| \+ 10 \* sigma \* \(1 \+ smoothing\) = 1\.1e\+39, beyond 3\.403e\+38, the "
            r"largest torch\.float32 value",
        ),
        ({"smoothing": 1e38}, r"`sigma`=1\.0 with `smoothing`=1e\+38 would put sample points"),
        ({"x0": [3.4e38], "sigma": 1e36}, r"= 3\.51e\+38, beyond 3\.403e\+38"),
        (
            {"x0": [60000.0], "sigma": 1000.0, "dtype": torch.float16},
            r"= 7\.1e\+04, beyond 6\.55e\+04, the largest torch\.float16 value",
        ),
    ],
)
def test_sample_points_beyond_the_dtype_are_rejected(options: dict[str, Any], message: str) -> None:
    options = dict(options)
    x0 = options.pop("x0", [0.0, 0.0])
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads(x0, **options)


# ---------------------------------------------------------------------- non-numbers from fun


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (None, TypeError, r"`fun` must return a real number, got None at x=array\(\["),
        (
            np.zeros(2),
            ValueError,
            r"`fun` must return one number, got an array of shape \(2,\) at x=array\(\[",
        ),
        (
            10**400,
            ValueError,
            r"`fun` must return a real number within the float range \(about ±1\.8e\+308\), "
            r"got 1000000000.*\.\.\. at x=array\(\[",
        ),
    ],
)
def test_non_number_mid_batch_keeps_the_batch(bad: Any, error: type, message: str) -> None:
    seen: list[np.ndarray] = []

    def fun(x: np.ndarray) -> Any:
        seen.append(x.copy())
        return bad if len(seen) == 5 else sphere(x)

    with pytest.raises(error, match=message) as caught:
        zg.minimize(fun, np.ones(3), max_evals=50, seed=0)
    np.testing.assert_array_equal(caught.value.zerograds_point, seen[4])
    evaluated = caught.value.zerograds_evaluated
    assert len(evaluated) == 4
    for (point, value), expected in zip(evaluated, seen[:4], strict=True):
        np.testing.assert_array_equal(point, expected)
        assert value == sphere(expected)


def test_to_value_rejects_int_beyond_float_range() -> None:
    with pytest.raises(ValueError, match=r"each entry of `values` must be a real number within"):
        to_values([1.0] * 7 + [-(10**400)], 8)
    assert to_value(10**300) == 1e300


# ---------------------------------------------------------------------- seeds


def seeded_x(seed: int) -> torch.Tensor:
    opt = zg.ZeroGrads([1.0, 1.0], seed=seed)
    for _ in range(3):
        points = opt.ask()
        opt.tell(points, (points**2).sum(1))
    return opt.x


def test_high_seed_bits_change_the_run() -> None:
    assert not torch.equal(seeded_x(0), seeded_x(2**32))
    assert not torch.equal(seeded_x(1), seeded_x(2**32 + 1))
    assert not torch.equal(seeded_x(2**40), seeded_x(2**41))
    assert torch.equal(seeded_x(2**62 + 5), seeded_x(2**62 + 5))
    assert zg.ZeroGrads([0.0], seed=2**63 - 1).seed == 2**63 - 1


@pytest.mark.parametrize("seed", [2**63, 2**64])
def test_seed_range_is_checked(seed: int) -> None:
    message = rf"`seed` must be an integer <= 9223372036854775807, got {seed}"
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([0.0, 0.0], seed=seed)
    with pytest.raises(ValueError, match=message):
        zg.minimize(sphere, np.ones(2), max_evals=20, seed=seed)


# ---------------------------------------------------------------------- other inputs


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("nonsense", r"`device` must be a torch device such as 'cpu' or 'cuda', got 'nonsense'"),
        ("meta", r"`device` must hold data, got 'meta'; 'meta' tensors have no values"),
        (["cpu"], r"`device` must be a torch device such as 'cpu' or 'cuda', got \['cpu'\]"),
    ],
)
def test_bad_device_is_rejected(device: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([0.0], device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"`device` 'cuda' needs CUDA, and CUDA is not available"):
        zg.ZeroGrads([0.0], device="cuda")
    with pytest.raises(ValueError, match=r"`device` must be a torch device .*, got 5"):
        zg.ZeroGrads([0.0], device=5)


@pytest.mark.parametrize(
    "name", ["surrogate_kwargs", "optimizer_kwargs", "surrogate_optimizer_kwargs"]
)
@pytest.mark.parametrize(("value", "shown"), [(3, "3"), ([1], r"\[1\]")])
def test_kwargs_must_be_dicts(name: str, value: Any, shown: str) -> None:
    with pytest.raises(TypeError, match=rf"`{name}` must be a dict or None, got {shown}"):
        zg.ZeroGrads([0.0], **{name: value})


def test_unknown_surrogate_kwargs_are_rejected() -> None:
    message = (
        r"`surrogate_kwargs` got unknown key 'bogus' for the surrogate 'mlp'; it accepts "
        r"'encoding', 'hidden', 'negative_slope', 'output_activation', 'output_init_scale'"
    )
    with pytest.raises(TypeError, match=message):
        zg.ZeroGrads([0.0], surrogate_kwargs={"bogus": 1})
    with pytest.raises(TypeError, match=r"unknown keys 'a', 'rank' for the surrogate 'highdim'"):
        zg.ZeroGrads([0.0], surrogate="highdim", surrogate_kwargs={"rank": 2, "a": 1})
    opt = zg.ZeroGrads([0.0], surrogate="scalable", surrogate_kwargs={"rank": 2})
    assert opt.surrogate.net[0].out_features == 2


@pytest.mark.parametrize("name", ["optimizer", "surrogate_optimizer"])
def test_closure_optimizers_are_rejected(name: str) -> None:
    message = (
        rf"`{name}` must be an optimizer whose step\(\) takes no arguments; step\(closure\) "
        r"optimizers such as torch\.optim\.LBFGS are not supported, got LBFGS whose step\(\) "
        r"requires closure"
    )
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([1.0, 1.0], **{name: torch.optim.LBFGS})
    zg.ZeroGrads([1.0, 1.0], **{name: torch.optim.SGD})


@pytest.mark.parametrize("batch_size", [2**29 + 1, 2**40, 10**30])
def test_batch_size_is_bounded(batch_size: int) -> None:
    message = (
        r"`batch_size` must be at most 536870912 for d=2, so that a batch of "
        rf"2 \* batch_size \* d coordinates stays within 2\*\*31, got {batch_size}"
    )
    with pytest.raises(ValueError, match=message):
        zg.ZeroGrads([0.0, 0.0], batch_size=batch_size)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_blackbox_rejects_non_floating_theta(dtype: torch.dtype) -> None:
    box = zg.BlackBox(lambda t: float((t**2).sum()), 3, seed=0)
    with pytest.raises(TypeError, match=rf"`theta` must be a floating tensor, got dtype {dtype}"):
        box(torch.zeros(3, dtype=dtype))
    assert box.nfev == 0


def test_minimize_theta_evaluation_minus_inf_is_not_best() -> None:
    def fun(x: np.ndarray) -> float:
        return -math.inf if x[0] < 0.9 else sphere(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zg.NumericsWarning)
        result = zg.minimize(fun, np.ones(2), max_evals=40, seed=0, eval_every=1)
    assert math.isfinite(result.best_fun)
