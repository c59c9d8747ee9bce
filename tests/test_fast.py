"""Tests of the autograd-free fast path in ``zerograds._fast`` against the autograd path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import zerograds as zg
from zerograds._fast import FastMLP
from zerograds.surrogate import build_surrogate

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
    ),
]

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "highdim": {"surrogate": "highdim", "surrogate_kwargs": {"hidden": (16, 16)}},
    "scalable": {"surrogate": "scalable"},
    "local": {"input_normalization": "local"},
    "step_first_bounds": {"step_order": "step_first", "bounds": ([-5.0] * 12, [5.0] * 12)},
    "batch_values": {"value_normalization": "batch"},
    "output_activation": {
        "value_normalization": "none",
        "surrogate_kwargs": {"output_activation": "leaky_relu"},
    },
    "unfused_adam": {"surrogate_optimizer_kwargs": {"fused": False}},
    "independent_points": {"batch_size": 3, "antithetic": False},
}


def trajectory(
    fast: bool, device: str, steps: int = 25, use_numpy: bool | None = None, **options: Any
) -> torch.Tensor:
    optimum = torch.linspace(-1.0, 2.0, 12, device=device)
    opt = zg.ZeroGrads(torch.full((12,), 3.0, device=device), sigma=0.5, seed=1, **options)
    opt._model.fast_path = fast
    if fast and use_numpy is not None:
        opt._model.fast = FastMLP(opt.surrogate, opt._model.optimizer, use_numpy=use_numpy)
    thetas = []
    for _ in range(steps):
        points = opt.ask()
        opt.tell(points, ((points - optimum) ** 2).sum(dim=1) + points.abs().sum(dim=1))
        thetas.append(opt.x)
    assert (opt._model.fast is not None) == fast
    return torch.stack(thetas)


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_matches_autograd(case: str) -> None:
    fast = trajectory(True, "cpu", **CASES[case])
    slow = trajectory(False, "cpu", **CASES[case])

    assert torch.equal(fast, slow)


@pytest.mark.parametrize("case", ["defaults", "highdim", "output_activation", "unfused_adam"])
def test_torch_passes_match_autograd(case: str) -> None:
    # The passes that CUDA runs, here on the CPU.
    fast = trajectory(True, "cpu", use_numpy=False, **CASES[case])
    slow = trajectory(False, "cpu", **CASES[case])

    assert torch.equal(fast, slow)


def autograd_fit(
    surrogate: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    centered: bool,
    steps: int,
) -> None:
    """Fit as ``ZeroGrads._fit`` does without the fast path."""
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        prediction = surrogate(inputs).reshape(-1)
        if centered:
            prediction = prediction - prediction.mean()
        torch.mean((prediction - targets) ** 2).backward()
        optimizer.step()


@pytest.mark.parametrize("rows", [1, 3, 4, 37, 128])
@pytest.mark.parametrize("centered", [True, False])
@pytest.mark.parametrize("use_numpy", [True, False])
@pytest.mark.parametrize("output_activation", [None, "leaky_relu"])
def test_fit_any_row_count_matches_autograd(
    rows: int, centered: bool, use_numpy: bool, output_activation: str | None
) -> None:
    generator = torch.Generator().manual_seed(rows)
    inputs = torch.randn(rows, 20, generator=generator)
    targets = torch.randn(rows, generator=generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fast_net = build_surrogate("mlp", 20, hidden=(32, 16), output_activation=output_activation)
    slow_net = copy.deepcopy(fast_net)
    fast_optimizer = torch.optim.Adam(fast_net.parameters(), lr=1e-2, fused=True)
    slow_optimizer = torch.optim.Adam(slow_net.parameters(), lr=1e-2, fused=True)
    fast = FastMLP(fast_net, fast_optimizer, use_numpy=use_numpy)

    # Two fits, so that the second reuses the work buffers of the first.
    for _ in range(2):
        fast.fit(inputs, targets, centered, 3)
        autograd_fit(slow_net, slow_optimizer, inputs, targets, centered, 3)
    point = inputs[:2].clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(slow_net(point).sum(), point)

    for got, want in zip(fast_net.parameters(), slow_net.parameters(), strict=True):
        assert torch.equal(got, want)
    assert torch.equal(fast.input_gradient(inputs[:2]), expected)


def test_use_numpy_rejects_other_dtypes() -> None:
    net = build_surrogate("mlp", 4, hidden=(8,)).to(torch.bfloat16)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    with pytest.raises(ValueError, match="float32 or float64"):
        FastMLP(net, optimizer, use_numpy=True)
    assert not FastMLP(net, optimizer).use_numpy


@pytest.mark.parametrize("device", DEVICES)
def test_fast_path_state_round_trip(device: str) -> None:
    optimum = torch.linspace(-1.0, 2.0, 12, device=device)

    def step(opt: zg.ZeroGrads) -> None:
        points = opt.ask()
        opt.tell(points, ((points - optimum) ** 2).sum(dim=1))

    first = zg.ZeroGrads(torch.zeros(12, device=device), sigma=0.5, seed=3)
    for _ in range(5):
        step(first)
    second = zg.ZeroGrads(torch.zeros(12, device=device), sigma=0.5, seed=3)
    second.load_state_dict(first.state_dict())
    for _ in range(5):
        step(first)
        step(second)
        assert torch.equal(first.x, second.x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_keeps_everything_on_device() -> None:
    opt = zg.ZeroGrads(torch.zeros(8, device="cuda"), sigma=0.5, seed=0)
    points = opt.ask()
    opt.tell(points, (points**2).sum(dim=1))

    assert points.device.type == "cuda"
    assert opt.x.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in opt.surrogate.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_run_descends() -> None:
    # CUDA draws other random numbers than the CPU, so only the outcome is compared.
    thetas = trajectory(True, "cuda", steps=100).cpu()
    optimum = torch.linspace(-1.0, 2.0, 12)

    assert float(((thetas[-1] - optimum) ** 2).sum()) < float(((thetas[0] - optimum) ** 2).sum())
