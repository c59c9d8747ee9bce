"""Tests of ``kernels="numba"`` (``zerograds._numba_mlp``) against the torch kernels.

The compiled kernels round differently from torch, so they agree with it up to rounding. The
tests compare in float64, where that rounding is about 1e-16, over runs short enough that the
algorithm's own sensitivity to rounding has not grown it (benchmarks/perf_iteration.py shows
that a one-ulp change of x0 grows at the same rate).
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch

import zerograds as zg
from test_fast import CASES as FAST_CASES
from test_fast import autograd_fit
from zerograds._fast import FastMLP
from zerograds.surrogate import build_surrogate

pytest.importorskip("numba")

F64 = torch.float64

# The torch fast path's cases, and those that take other branches of the compiled path.
CASES: dict[str, dict[str, Any]] = {
    **FAST_CASES,
    "paper_sizes": {"batch_size": 2, "surrogate_kwargs": {"hidden": (64, 64, 64)}, "replay": 1},
    "two_theta_steps": {"theta_steps": 2},
    "bounds": {"bounds": ([-5.0] * 12, [3.0] * 12), "input_normalization": "none"},
    "output_activation_running": {"surrogate_kwargs": {"output_activation": "leaky_relu"}},
    "no_smoothing": {"smoothing": 0.0},
    "replay_rows": {"batch_size": 3, "replay": 8, "replay_radius": float("inf")},
}


def objective(points: torch.Tensor) -> torch.Tensor:
    optimum = torch.linspace(-1.0, 2.0, points.shape[1], dtype=points.dtype)
    return ((points - optimum) ** 2).sum(dim=1) + points.abs().sum(dim=1)


def trajectory(kernels: str, steps: int = 25, dtype: torch.dtype = F64, **options: Any) -> Any:
    opt = zg.ZeroGrads(
        torch.full((12,), 3.0), sigma=0.5, seed=1, dtype=dtype, kernels=kernels, **options
    )
    thetas = []
    for _ in range(steps):
        points = opt.ask()
        opt.tell(points, objective(points))
        thetas.append(opt.x)
    assert (opt._model.fast.numba is not None) == (kernels == "numba")
    return torch.stack(thetas)


@pytest.mark.parametrize("case", list(CASES))
def test_numba_float64_matches_torch(case: str) -> None:
    compiled = trajectory("numba", **CASES[case])
    reference = trajectory("torch", **CASES[case])

    difference = float((compiled - reference).abs().max())
    assert difference < 1e-9, difference
    # The run moved, so the agreement is not that of two frozen θ.
    assert float((reference[-1] - reference[0]).abs().max()) > 0.1


def test_numba_float32_agrees_on_the_first_step() -> None:
    # In float32 the surrogate's Adam turns rounding differences in gradients that are zero
    # in exact arithmetic (the biases' under the centered loss) into steps of full size. So
    # the runs part after the first iteration, as two torch runs from x0 one ulp apart do.
    compiled = trajectory("numba", steps=1, dtype=torch.float32)
    reference = trajectory("torch", steps=1, dtype=torch.float32)

    assert torch.allclose(compiled, reference, rtol=0.0, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 3, 4, 5, 37, 128])
@pytest.mark.parametrize("centered", [True, False])
@pytest.mark.parametrize("output_activation", [None, "leaky_relu"])
def test_numba_fit_matches_autograd(
    rows: int, centered: bool, output_activation: str | None
) -> None:
    generator = torch.Generator().manual_seed(rows)
    inputs = torch.randn(rows, 20, generator=generator, dtype=F64)
    targets = torch.randn(rows, generator=generator, dtype=F64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_surrogate("mlp", 20, hidden=(32, 16), output_activation=output_activation)
    net = net.to(F64)
    reference_net = copy.deepcopy(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    reference_optimizer = torch.optim.Adam(reference_net.parameters(), lr=1e-2, fused=True)
    fast = FastMLP(net, optimizer, kernels="numba")
    initial = net.net[0].weight.detach().clone()

    for _ in range(2):
        fast.fit(inputs, targets, centered, 3)
        autograd_fit(reference_net, reference_optimizer, inputs, targets, centered, 3)
    point = inputs[:2].clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(reference_net(point).sum(), point)

    for got, want in zip(net.parameters(), reference_net.parameters(), strict=True):
        # Biases whose centered-loss gradient is zero in exact arithmetic take steps of
        # lr * rounding / eps, about 1e-11 each.
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-9)
    # The weights moved, so the comparison is not that of two untouched networks. With one
    # row the centered loss is zero, and they must stay.
    unchanged = torch.equal(net.net[0].weight, initial)
    if rows == 1 and centered:
        assert unchanged
    else:
        assert not unchanged
    for got, want in zip(optimizer.state.values(), reference_optimizer.state.values(), strict=True):
        assert float(got["step"]) == float(want["step"]) == 6.0
        assert torch.allclose(got["exp_avg_sq"], want["exp_avg_sq"], rtol=1e-6, atol=1e-12)
    assert torch.allclose(fast.input_gradient(inputs[:2]), expected, rtol=1e-7, atol=1e-9)


def test_numba_state_round_trip() -> None:
    def step(opt: zg.ZeroGrads) -> None:
        points = opt.ask()
        opt.tell(points, objective(points))

    first = zg.ZeroGrads(torch.zeros(12), sigma=0.5, seed=3, kernels="numba")
    for _ in range(5):
        step(first)
    second = zg.ZeroGrads(torch.zeros(12), sigma=0.5, seed=3, kernels="numba")
    second.load_state_dict(first.state_dict())
    for _ in range(5):
        step(first)
        step(second)
        assert torch.equal(first.x, second.x)


def test_numba_state_loads_into_torch() -> None:
    def step(opt: zg.ZeroGrads) -> None:
        points = opt.ask()
        opt.tell(points, objective(points))

    compiled = zg.ZeroGrads(torch.zeros(12), sigma=0.5, seed=3, kernels="numba", dtype=F64)
    for _ in range(5):
        step(compiled)
    plain = zg.ZeroGrads(torch.zeros(12), sigma=0.5, seed=3, dtype=F64)
    plain.load_state_dict(compiled.state_dict())
    for _ in range(5):
        step(compiled)
        step(plain)
    assert torch.allclose(compiled.x, plain.x, rtol=0.0, atol=1e-9)


def test_numba_minimize_converges_like_torch() -> None:
    optimum = torch.linspace(-2.0, 3.0, 30)

    def fun(x: torch.Tensor) -> torch.Tensor:
        return ((x - optimum) ** 2).sum(dim=1)

    results = {
        kernels: zg.minimize(
            fun,
            torch.zeros(30),
            sigma=0.3,
            max_evals=4000,
            seed=0,
            vectorized=True,
            kernels=kernels,
        )
        for kernels in ("torch", "numba")
    }
    start = float(fun(torch.zeros(1, 30)))
    for result in results.values():
        assert result.fun < 0.01 * start
    assert results["numba"].nfev == results["torch"].nfev
    assert 3990 <= results["numba"].nfev <= 4000


def test_numba_blackbox_gradient_matches_torch() -> None:
    boxes = {
        kernels: zg.BlackBox(
            objective, 12, sigma=0.5, seed=2, dtype=F64, vectorized=True, kernels=kernels
        )
        for kernels in ("torch", "numba")
    }
    gradients = {}
    for kernels, box in boxes.items():
        theta = torch.full((12,), 1.5, dtype=F64, requires_grad=True)
        box(theta).backward()
        gradients[kernels] = theta.grad
    assert torch.allclose(gradients["numba"], gradients["torch"], rtol=1e-9, atol=1e-12)
    assert float(gradients["torch"].abs().max()) > 0.0


def test_numba_nonfinite_gradient_skips_step() -> None:
    opt = zg.ZeroGrads(torch.zeros(12), sigma=0.5, seed=3, kernels="numba")
    points = opt.ask()
    opt.tell(points, objective(points))
    with torch.no_grad():
        opt.surrogate.net[-1].weight.fill_(float("nan"))
    before = opt.x
    points = opt.ask()
    with pytest.warns(zg.NumericsWarning, match="skipped the θ step at iteration 1"):
        opt.tell(points, objective(points))
    assert torch.equal(opt.x, before)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"kernels": "cuda"}, ValueError, "`kernels` must be one of 'torch', 'numba', got 'cuda'"),
        ({"kernels": None}, ValueError, "`kernels` must be one of 'torch', 'numba', got None"),
        (
            {"kernels": "numba", "dtype": torch.float16},
            ValueError,
            r"`kernels`='numba' runs on the CPU in float32 or float64, got device='cpu', "
            r"dtype=torch.float16",
        ),
        (
            {"kernels": "numba", "surrogate": torch.nn.Sequential(torch.nn.Linear(12, 1))},
            ValueError,
            r"`kernels`='numba' needs the built-in MLP surrogate .* got Sequential with Adam",
        ),
        (
            {"kernels": "numba", "surrogate_optimizer": torch.optim.SGD},
            ValueError,
            r"`kernels`='numba' needs the built-in MLP surrogate .* got MLP with SGD",
        ),
    ],
)
def test_kernels_rejects_unsupported(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        zg.ZeroGrads(torch.zeros(12), sigma=0.5, **options)


def test_numba_sgd_theta_optimizer() -> None:
    def run(kernels: str) -> torch.Tensor:
        opt = zg.ZeroGrads(
            torch.zeros(12),
            sigma=0.5,
            seed=4,
            lr=0.05,
            optimizer=torch.optim.SGD,
            dtype=F64,
            kernels=kernels,
        )
        for _ in range(10):
            points = opt.ask()
            opt.tell(points, objective(points))
        return opt.x

    assert torch.allclose(run("numba"), run("torch"), rtol=0.0, atol=1e-9)


def test_numba_memory_layout_independent() -> None:
    # An in-process companion of the test across processes below. Arrays kept alive in
    # between move later allocations, and the bits must not change.
    def final_theta() -> torch.Tensor:
        return trajectory("numba", steps=15, **CASES["paper_sizes"])[-1]

    first = final_theta()
    allocations = []
    for size in (3, 17, 129, 1000, 4097, 5, 64, 12_345):
        allocations.append(np.empty(size))
        assert torch.equal(final_theta(), first)


def test_numba_seed_bits_across_processes() -> None:
    # Memory addresses differ between processes. With fast-math division about one process
    # in ten gave other bits, because the compiled loops round differently on either branch
    # of their run-time overlap check.
    script = (
        "import hashlib, torch, zerograds as zg\n"
        "torch.set_num_threads(1)\n"
        "c = torch.full((1000,), 30.0, dtype=torch.float64)\n"
        "opt = zg.ZeroGrads(torch.full((1000,), 100.0, dtype=torch.float64), sigma=1.0,"
        " lr=0.5, seed=0, batch_size=2, surrogate_kwargs={'hidden': (64, 64, 64)},"
        " replay=1, dtype=torch.float64, kernels='numba')\n"
        "for _ in range(40):\n"
        "    X = opt.ask(); opt.tell(X, ((X - c) ** 2).sum(dim=1))\n"
        "print(hashlib.sha1(opt.x.numpy().tobytes()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    }
    assert len(digests) == 1, digests


def test_numba_float32_overflow_skips_step() -> None:
    # Values near 1e37 give a float64 gradient that is finite but overflows float32.
    opt = zg.ZeroGrads(torch.ones(4), sigma=0.01, seed=1, kernels="numba")
    with pytest.warns(zg.NumericsWarning, match="skipped the θ step"):
        for _ in range(5):
            points = opt.ask()
            opt.tell(points, (points.double() - 1.0).sum(dim=1) * 2e39)
    assert bool(torch.isfinite(opt.x).all())


@pytest.mark.parametrize("kernels", ["torch", "numba"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_after_tell_continues_identically(kernels: str, how: str) -> None:
    def step(opt: zg.ZeroGrads) -> None:
        points = opt.ask()
        opt.tell(points, objective(points))

    first = zg.ZeroGrads(torch.zeros(12), sigma=0.5, seed=5, kernels=kernels, replay=1)
    for _ in range(3):
        step(first)
    second = copy.deepcopy(first) if how == "deepcopy" else pickle.loads(pickle.dumps(first))
    for _ in range(5):
        step(first)
        step(second)
        assert torch.equal(first.x, second.x)


def test_numba_error_names_adam_settings() -> None:
    with pytest.raises(ValueError, match=r"none of weight_decay, amsgrad, maximize"):
        zg.ZeroGrads(torch.zeros(12), kernels="numba", surrogate_optimizer_kwargs={"amsgrad": True})
