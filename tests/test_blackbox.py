"""Tests of ``zerograds.BlackBox``, the autograd bridge."""

from __future__ import annotations

import math

import pytest
import torch

import zerograds as zg

TARGET = torch.tensor([3.0, -2.0, 4.0, 1.0, -3.0])


def quadratic(x: torch.Tensor) -> float:
    return float(((x - TARGET) ** 2).sum())


def rounded_quadratic(x: torch.Tensor) -> float:
    """Piecewise constant: zero gradient almost everywhere, so autograd alone cannot help."""
    return float(((x.round() - TARGET) ** 2).sum())


def test_forward_value_equals_fun() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0)
    theta = torch.linspace(-1.0, 1.0, 5)

    value = box(theta)

    assert value.shape == ()
    assert float(value) == pytest.approx(quadratic(theta), rel=1e-6)
    assert box.nfev == 2 * 4 + 1


def test_forward_mean_value() -> None:
    seen: list[float] = []

    def recording(x: torch.Tensor) -> float:
        seen.append(quadratic(x))
        return seen[-1]

    box = zg.BlackBox(recording, dim=5, batch_size=3, seed=0, value="mean")

    value = box(torch.zeros(5))

    assert box.nfev == 6
    assert float(value) == pytest.approx(sum(seen) / len(seen), rel=1e-6)


def test_backward_is_surrogate_gradient() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0, step_order="fit_first")
    theta = torch.zeros(5, requires_grad=True)

    box(theta).backward()

    assert theta.grad is not None
    assert torch.equal(theta.grad, box.core._surrogate_gradient(theta.detach()))
    assert float(theta.grad.norm()) > 0.0


def test_backward_scales_with_upstream_gradient() -> None:
    first = zg.BlackBox(quadratic, dim=5, seed=0)
    second = zg.BlackBox(quadratic, dim=5, seed=0)
    theta_a = torch.zeros(5, requires_grad=True)
    theta_b = torch.zeros(5, requires_grad=True)

    first(theta_a).backward()
    (3.0 * second(theta_b)).backward()

    assert theta_a.grad is not None
    assert theta_b.grad is not None
    assert torch.allclose(theta_b.grad, 3.0 * theta_a.grad)


def test_upstream_parametrization_chain_rule() -> None:
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(5, 3, generator=generator)
    offset = torch.randn(5, generator=generator)
    box = zg.BlackBox(quadratic, dim=5, seed=0)
    psi = torch.zeros(3, requires_grad=True)

    theta = matrix @ psi + offset  # θ = g(ψ)
    box(theta).backward()

    gradient = box.core._surrogate_gradient(theta.detach())
    assert psi.grad is not None
    assert torch.allclose(psi.grad, matrix.T @ gradient, atol=1e-6)


def test_has_no_trainable_parameters() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0)

    # A user's optimizer over model.parameters() must not pick up the surrogate's weights.
    assert list(box.parameters()) == []


def test_rounding_objective_with_scheduler() -> None:
    box = zg.BlackBox(rounded_quadratic, dim=5, sigma=0.5, seed=0, value="mean")
    psi = torch.zeros(5, requires_grad=True)
    optimizer = torch.optim.Adam([psi], lr=0.2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.3)

    for _ in range(300):
        optimizer.zero_grad()
        theta = 2.0 * psi + 0.5
        box(theta).backward()
        optimizer.step()
        scheduler.step()

    theta = 2.0 * psi.detach() + 0.5
    # From 39 at θ = 0.5·1; seeds 0-3 all reach 0 (every coordinate rounds to the target).
    assert rounded_quadratic(theta) <= 1.0
    assert float((theta - TARGET).abs().max()) < 1.0
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 0.3**3)
    assert box.nfev == 300 * 8


def test_float64_theta() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0)
    theta = torch.zeros(5, dtype=torch.float64, requires_grad=True)

    value = box(theta)
    value.backward()

    assert value.dtype == torch.float64
    assert theta.grad is not None
    assert theta.grad.dtype == torch.float64


def test_nonfinite_batch_gives_zero_gradient() -> None:
    broken = False

    def sometimes_nan(x: torch.Tensor) -> float:
        return math.nan if broken else quadratic(x)

    box = zg.BlackBox(sometimes_nan, dim=5, seed=0, value="mean")
    box(torch.zeros(5, requires_grad=True)).backward()
    broken = True
    theta = torch.zeros(5, requires_grad=True)

    with pytest.warns(zg.NumericsWarning):
        value = box(theta)
    value.backward()

    assert math.isnan(float(value.detach()))
    assert theta.grad is not None
    assert torch.equal(theta.grad, torch.zeros(5))  # not the previous batch's gradient


def test_forward_after_error_samples_new_theta() -> None:
    class SolverError(Exception):
        pass

    points: list[torch.Tensor] = []
    calls = 0

    def crashing(x: torch.Tensor) -> float:
        nonlocal calls
        calls += 1
        points.append(x.clone())
        if calls == 2:
            raise SolverError("diverged")
        return quadratic(x)

    box = zg.BlackBox(crashing, dim=5, sigma=0.1, smoothing=0.0, seed=0)
    with pytest.raises(SolverError):
        box(torch.zeros(5))
    points.clear()

    box(torch.full((5,), 10.0))

    samples = torch.stack(points[:4])
    assert float((samples - 10.0).abs().max()) < 1.0  # sampled around the new θ


def test_stepping_reduces_loss() -> None:
    box = zg.BlackBox(quadratic, dim=5, sigma=0.5, seed=1)
    theta = torch.zeros(5, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=0.05)

    for _ in range(100):
        optimizer.zero_grad()
        box(theta).backward()
        optimizer.step()

    assert quadratic(theta.detach()) < 0.1 * quadratic(torch.zeros(5))


# ---------------------------------------------------------------------- bad input


def test_theta_wrong_shape() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0)

    with pytest.raises(ValueError, match=r"`theta` must have shape \(5,\), got \(4,\)"):
        box(torch.zeros(4))
    with pytest.raises(ValueError, match=r"`theta` must have shape \(5,\), got \(1, 5\)"):
        box(torch.zeros(1, 5))


def test_theta_not_tensor() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0)

    with pytest.raises(TypeError, match=r"`theta` must be a torch\.Tensor, got \[0\.0, 0\.0\]"):
        box([0.0, 0.0])  # type: ignore[arg-type]


def test_theta_not_finite() -> None:
    box = zg.BlackBox(quadratic, dim=5, seed=0)

    with pytest.raises(ValueError, match=r"`theta` must be finite, got tensor\(\[0\., nan"):
        box(torch.tensor([0.0, math.nan, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("option", ["optimizer", "optimizer_kwargs", "lr", "theta_steps", "bounds"])
def test_theta_optimizer_options_rejected(option: str) -> None:
    with pytest.raises(
        ValueError, match=rf"`{option}` does not apply to BlackBox .*, got {option}=1"
    ):
        zg.BlackBox(quadratic, dim=5, **{option: 1})


def test_value_mode_rejected() -> None:
    with pytest.raises(ValueError, match=r"`value` must be one of 'exact', 'mean', got 'median'"):
        zg.BlackBox(quadratic, dim=5, value="median")


def test_dim_rejected() -> None:
    with pytest.raises(ValueError, match=r"`dim` must be an integer >= 1, got 0"):
        zg.BlackBox(quadratic, dim=0)


def test_sigma_rejected() -> None:
    with pytest.raises(ValueError, match=r"`sigma` must be a finite number > 0, got -1\.0"):
        zg.BlackBox(quadratic, dim=5, sigma=-1.0)
