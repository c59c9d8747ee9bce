"""Tests of ``zerograds.minimize``: budget, counting, result types, history and errors."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

import zerograds as zg

CENTER = np.array([1.5, -2.0, 0.5])


class CountingQuadratic:
    """Σ (x - CENTER)², counting every call and recording the type and shape of its input."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0
        self.inputs: list[Any] = []

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        self.inputs.append(x)
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        values = ((array - CENTER) ** 2).sum(axis=-1)
        self.rows += 1 if array.ndim == 1 else array.shape[0]
        return values if array.ndim == 2 else float(values)


def quadratic(x: np.ndarray) -> float:
    return float(np.sum((x - CENTER) ** 2))


# ---------------------------------------------------------------------- budget and counting


@pytest.mark.parametrize("batch_size", [1, 2, 3])
@pytest.mark.parametrize("eval_every", [0, 1, 3])
@pytest.mark.parametrize("max_evals", [9, 40, 61])
def test_nfev_exact_within_budget(batch_size: int, eval_every: int, max_evals: int) -> None:
    fun = CountingQuadratic()
    if max_evals < 2 * batch_size + 1:
        pytest.skip("budget below one batch and the final evaluation")

    result = zg.minimize(
        fun, np.zeros(3), max_evals=max_evals, batch_size=batch_size, eval_every=eval_every, seed=0
    )

    assert result.nfev == fun.calls
    assert fun.calls <= max_evals
    # The loop stops only when the next iteration would not fit.
    per_iteration = 2 * batch_size + (1 if eval_every else 0)
    assert fun.calls > max_evals - per_iteration - 1
    assert result.nit == len(result.history)
    assert result.history[-1].nfev + 1 == result.nfev  # the final evaluation of θ


def test_nfev_exact_vectorized() -> None:
    fun = CountingQuadratic()

    result = zg.minimize(
        fun, np.zeros(3), max_evals=50, batch_size=3, vectorized=True, eval_every=2, seed=0
    )

    assert result.nfev == fun.rows
    assert fun.rows <= 50
    batch_shapes = {np.shape(x) for x in fun.inputs}
    assert (6, 3) in batch_shapes
    assert all(len(shape) == 2 for shape in batch_shapes)
    assert all(isinstance(x, np.ndarray) for x in fun.inputs)


def test_max_evals_too_small() -> None:
    with pytest.raises(ValueError, match=r"`max_evals` must be an integer >= 5, got 4"):
        zg.minimize(quadratic, np.zeros(3), max_evals=4, batch_size=2)


def test_eval_every_negative() -> None:
    with pytest.raises(ValueError, match=r"`eval_every` must be an integer >= 0, got -1"):
        zg.minimize(quadratic, np.zeros(3), max_evals=20, eval_every=-1)


def test_misspelled_keyword_suggests_name() -> None:
    with pytest.raises(
        TypeError,
        match=r"^minimize\(\) got an unexpected keyword argument 'sigam' "
        r"\(did you mean 'sigma'\?\)$",
    ):
        zg.minimize(quadratic, np.zeros(3), sigam=1.0)
    # ZeroGrads' constructor options are suggested too.
    with pytest.raises(TypeError, match=r"'surogate_lr' \(did you mean 'surrogate_lr'\?\)$"):
        zg.minimize(quadratic, np.zeros(3), surogate_lr=1e-3)


def test_unknown_keywords_listed() -> None:
    with pytest.raises(
        TypeError,
        match=r"^minimize\(\) got unexpected keyword arguments 'max_eval' \(did you mean "
        r"'max_evals'\?\), 'colour'; minimize accepts its own keywords and those of "
        r"zerograds\.ZeroGrads, see help\(zerograds\.minimize\)$",
    ):
        zg.minimize(quadratic, np.zeros(3), max_eval=10, colour="red")


def test_callback_not_callable() -> None:
    with pytest.raises(TypeError, match=r"`callback` must be callable, got 'stop'"):
        zg.minimize(quadratic, np.zeros(3), max_evals=20, callback="stop")


def test_fun_not_callable() -> None:
    with pytest.raises(TypeError, match=r"`fun` must be callable, got 3"):
        zg.minimize(3, np.zeros(3), max_evals=20)  # type: ignore[arg-type]


def test_vectorized_not_bool() -> None:
    with pytest.raises(TypeError, match=r"`vectorized` must be a bool, got 'yes'"):
        zg.minimize(quadratic, np.zeros(3), max_evals=20, vectorized="yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- result


def test_result_fun_is_value_at_x() -> None:
    result = zg.minimize(quadratic, np.zeros(3), max_evals=200, seed=0)

    assert result.fun == quadratic(result.x)
    assert result.best_fun <= result.fun
    assert result.best_fun == pytest.approx(quadratic(result.best_x))
    assert result.success
    assert result.message == (
        "stopped at 193 evaluations because the next batch of 8 evaluations would exceed "
        "max_evals=200"
    )


@pytest.mark.parametrize(
    ("max_evals", "eval_every", "message"),
    [
        (41, 0, "stopped after max_evals=41 evaluations"),
        (
            4000,
            0,
            "stopped at 3993 evaluations because the next batch of 8 evaluations would exceed "
            "max_evals=4000",
        ),
        (
            30,
            1,
            "stopped at 28 evaluations because the next batch of 8 evaluations plus one "
            "evaluation of θ would exceed max_evals=30",
        ),
    ],
)
def test_budget_message_exact(max_evals: int, eval_every: int, message: str) -> None:
    result = zg.minimize(
        lambda x: float(np.sum(x**2)), np.zeros(2), max_evals=max_evals, eval_every=eval_every
    )

    assert result.message == message
    assert str(result.nfev) in message


def test_result_type_numpy() -> None:
    fun = CountingQuadratic()

    result = zg.minimize(fun, np.zeros(3), max_evals=20, seed=0)

    assert isinstance(result.x, np.ndarray)
    assert result.x.dtype == np.float64
    assert isinstance(result.best_x, np.ndarray)
    assert all(isinstance(x, np.ndarray) and x.shape == (3,) for x in fun.inputs)


def test_result_type_numpy_float32() -> None:
    result = zg.minimize(quadratic, np.zeros(3, dtype=np.float32), max_evals=20, seed=0)

    assert isinstance(result.x, np.ndarray)
    assert result.x.dtype == np.float32


def test_result_type_list() -> None:
    fun = CountingQuadratic()

    result = zg.minimize(fun, [0.0, 0.0, 0.0], max_evals=20, seed=0)

    assert isinstance(result.x, list)
    assert all(isinstance(v, float) for v in result.x)
    assert isinstance(result.best_x, list)
    assert all(isinstance(x, np.ndarray) for x in fun.inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_result_type_tensor(dtype: torch.dtype) -> None:
    fun = CountingQuadratic()

    result = zg.minimize(fun, torch.zeros(3, dtype=dtype), max_evals=20, seed=0)

    assert isinstance(result.x, torch.Tensor)
    assert result.x.dtype == dtype
    assert result.x.device == torch.device("cpu")
    assert isinstance(result.best_x, torch.Tensor)
    assert all(isinstance(x, torch.Tensor) and x.dtype == dtype for x in fun.inputs)


def test_vectorized_tensor_batches() -> None:
    fun = CountingQuadratic()

    zg.minimize(fun, torch.zeros(3, dtype=torch.float64), max_evals=20, vectorized=True, seed=0)

    assert all(isinstance(x, torch.Tensor) and x.ndim == 2 for x in fun.inputs)
    assert tuple(fun.inputs[0].shape) == (8, 3)


def test_history_consistent() -> None:
    result = zg.minimize(quadratic, np.zeros(3), max_evals=120, eval_every=2, seed=0)
    history = result.history

    assert [entry.iteration for entry in history] == list(range(1, result.nit + 1))
    nfev = [entry.nfev for entry in history]
    assert all(b > a for a, b in itertools.pairwise(nfev))
    best = [entry.best_fun for entry in history]
    assert all(b <= a for a, b in itertools.pairwise(best))
    times = [entry.time for entry in history]
    assert all(b >= a for a, b in itertools.pairwise(times))
    assert all(math.isfinite(entry.fun_mean) for entry in history)
    # θ is evaluated every second iteration only.
    assert all(math.isfinite(entry.fun) == (entry.iteration % 2 == 0) for entry in history)
    assert result.best_fun <= best[-1]


def test_converges_shifted_quadratic() -> None:
    x0 = np.full(3, 4.0)

    result = zg.minimize(quadratic, x0, sigma=0.5, lr=0.1, max_evals=1200, seed=0)

    assert result.fun < 0.05 * quadratic(x0)


def test_callback_true_stops() -> None:
    seen: list[int] = []

    def callback(opt: zg.ZeroGrads, entry: zg.HistoryEntry) -> bool:
        seen.append(entry.iteration)
        assert opt.iteration == entry.iteration
        return entry.iteration == 3

    result = zg.minimize(quadratic, np.zeros(3), max_evals=200, callback=callback, seed=0)

    assert seen == [1, 2, 3]
    assert result.nit == 3
    assert result.nfev == 3 * 8 + 1
    assert result.message == "stopped by callback at iteration 3"


def test_callback_none_continues() -> None:
    calls: list[int] = []

    result = zg.minimize(
        quadratic, np.zeros(3), max_evals=41, callback=lambda opt, e: calls.append(1), seed=0
    )

    assert len(calls) == result.nit == 5


@pytest.mark.parametrize("kernels", ["torch", "numba"])
def test_callback_sets_theta_lr(kernels: str) -> None:
    if kernels == "numba":
        pytest.importorskip("numba")
    thetas: list[torch.Tensor] = []

    def callback(opt: zg.ZeroGrads, entry: zg.HistoryEntry) -> None:
        thetas.append(opt.x.clone())
        opt.optimizer.param_groups[0]["lr"] = 0.0

    result = zg.minimize(
        quadratic, np.zeros(3), max_evals=41, callback=callback, seed=0, kernels=kernels
    )

    assert result.nit == len(thetas) == 5
    assert not torch.equal(thetas[0], torch.zeros(3, dtype=thetas[0].dtype))
    for theta in thetas[1:]:
        assert torch.equal(theta, thetas[0])


def test_same_seed_same_result() -> None:
    first = zg.minimize(quadratic, np.zeros(3), max_evals=100, seed=3)
    second = zg.minimize(quadratic, np.zeros(3), max_evals=100, seed=3)
    other = zg.minimize(quadratic, np.zeros(3), max_evals=100, seed=4)

    assert np.array_equal(first.x, second.x)
    assert [e.fun_mean for e in first.history] == [e.fun_mean for e in second.history]
    assert not np.array_equal(first.x, other.x)


def test_nonfinite_counted_in_result() -> None:
    def sometimes_nan(x: np.ndarray) -> float:
        return math.nan if x[0] > 0.5 else quadratic(x)

    with pytest.warns(zg.NumericsWarning):
        result = zg.minimize(sometimes_nan, np.zeros(3), sigma=1.0, max_evals=41, seed=0)

    assert result.n_nonfinite > 0
    assert result.n_nonfinite < result.nfev


def test_all_nonfinite_raises() -> None:
    with (
        pytest.warns(zg.NumericsWarning),
        pytest.raises(zg.NonFiniteObjectiveError, match=r"no finite value in 2 iterations"),
    ):
        zg.minimize(
            lambda x: math.inf, np.zeros(3), max_evals=100, max_nonfinite_iterations=2, seed=0
        )


# ---------------------------------------------------------------------- bad return values

BAD_RETURNS: list[tuple[Any, type[Exception], str]] = [
    ("1.0", TypeError, r"`fun` must return a real number, got '1\.0'"),
    (None, TypeError, r"`fun` must return a real number, got None"),
    (1 + 1j, TypeError, r"`fun` must return a real number, got \(1\+1j\)"),
    (True, TypeError, r"`fun` must return a real number, got True"),
    (np.ones(2), ValueError, r"`fun` must return one number, got an array of shape \(2,\)"),
    (torch.ones(1, 2), ValueError, r"`fun` must return one number, got an array of shape \(1, 2\)"),
]


@pytest.mark.parametrize(("returned", "error", "message"), BAD_RETURNS)
def test_fun_bad_return(returned: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        zg.minimize(lambda x: returned, np.zeros(3), max_evals=20, seed=0)


BAD_VECTORIZED_RETURNS: list[tuple[Any, type[Exception], str]] = [
    (np.ones(3), ValueError, r"`fun` must return 8 numbers, got shape \(3,\)"),
    (np.ones((4, 2)), ValueError, r"`fun` must return 8 numbers, got shape \(4, 2\)"),
    (torch.ones(5), ValueError, r"`fun` must return 8 numbers, got shape \(5,\)"),
    (np.array(["a"] * 4), TypeError, r"`fun` must return real numbers, got dtype <U1"),
    (np.ones(4, dtype=bool), TypeError, r"`fun` must return real numbers, got dtype bool"),
    (None, TypeError, r"`fun` must return 8 real numbers, got None"),
]


@pytest.mark.parametrize(("returned", "error", "message"), BAD_VECTORIZED_RETURNS)
def test_vectorized_bad_return(returned: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        zg.minimize(lambda x: returned, np.zeros(3), max_evals=20, vectorized=True, seed=0)


# ---------------------------------------------------------------------- objective raising


class SimulatorError(Exception):
    pass


def test_fun_exception_carries_point() -> None:
    calls: list[np.ndarray] = []

    def crashing(x: np.ndarray) -> float:
        calls.append(x.copy())
        if len(calls) == 7:
            raise SimulatorError("mesh self-intersects")
        return quadratic(x)

    with pytest.raises(SimulatorError, match="mesh self-intersects") as info:
        zg.minimize(crashing, np.zeros(3), max_evals=100, batch_size=2, seed=0)

    error = info.value
    assert np.array_equal(error.zerograds_point, calls[-1])
    assert len(error.zerograds_evaluated) == 2  # the batch's points before the failing one
    assert np.array_equal(error.zerograds_evaluated[0][0], calls[4])
    assert error.zerograds_evaluated[0][1] == quadratic(calls[4])
    assert any("zerograds: the objective raised at x=" in note for note in error.__notes__)


def test_fun_exception_vectorized_carries_batch() -> None:
    def crashing(x: np.ndarray) -> np.ndarray:
        raise SimulatorError("license server down")

    with pytest.raises(SimulatorError) as info:
        zg.minimize(crashing, np.zeros(3), max_evals=100, vectorized=True, seed=0)

    assert info.value.zerograds_point.shape == (8, 3)


def test_fun_exception_leaves_optimizer_usable() -> None:
    captured: list[zg.ZeroGrads] = []
    calls = 0

    def crashing(x: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        if calls == 10:
            raise SimulatorError("crash")
        return quadratic(x)

    def keep(opt: zg.ZeroGrads, entry: zg.HistoryEntry) -> None:
        if not captured:
            captured.append(opt)

    with pytest.raises(SimulatorError) as info:
        zg.minimize(crashing, np.zeros(3), max_evals=100, callback=keep, batch_size=2, seed=0)

    opt = captured[0]
    assert opt.iteration == 2
    assert opt.nfev == 8
    pending = opt.ask()
    failing = torch.as_tensor(info.value.zerograds_point, dtype=pending.dtype)
    assert torch.equal(pending[1], failing)

    state = opt.state_dict()
    restored = zg.ZeroGrads(np.zeros(3), batch_size=2, seed=0)
    restored.load_state_dict(state)
    values = torch.tensor([quadratic(p.double().numpy()) for p in pending])
    opt.tell(pending, values)
    restored.tell(restored.ask(), values)
    assert torch.equal(opt.x, restored.x)
    assert opt.iteration == 3
