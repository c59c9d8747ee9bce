"""Tests of the autograd-free fast path in ``zerograds._fast`` against the autograd path."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import zerograds as zg

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


def trajectory(fast: bool, device: str, steps: int = 25, **options: Any) -> torch.Tensor:
    optimum = torch.linspace(-1.0, 2.0, 12, device=device)
    opt = zg.ZeroGrads(torch.full((12,), 3.0, device=device), sigma=0.5, seed=1, **options)
    opt._fast_path = fast
    thetas = []
    for _ in range(steps):
        points = opt.ask()
        opt.tell(points, ((points - optimum) ** 2).sum(dim=1) + points.abs().sum(dim=1))
        thetas.append(opt.x)
    assert (opt._fast is not None) == fast
    return torch.stack(thetas)


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_matches_autograd(case: str) -> None:
    fast = trajectory(True, "cpu", **CASES[case])
    slow = trajectory(False, "cpu", **CASES[case])

    assert torch.equal(fast, slow)


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
