"""Tests of the surrogate networks in ``zerograds.surrogate``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import zerograds as zg
from zerograds.surrogate import MLP, PositionalEncoding, build_surrogate, scalable_parameter_count


def layer_sizes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_mlp_preset_architecture() -> None:
    surrogate = build_surrogate("mlp", 7)

    assert layer_sizes(surrogate) == [(7, 256), (256, 256), (256, 1)]
    activations = [m for m in surrogate.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(activations) == 2
    assert all(a.negative_slope == 0.01 for a in activations)
    assert isinstance(surrogate.net[-1], nn.Linear)


def test_reference_preset_architecture() -> None:
    surrogate = build_surrogate("reference", 7)

    assert layer_sizes(surrogate) == [(7, 64), (64, 64), (64, 64), (64, 1)]
    activations = [m for m in surrogate.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(activations) == 4  # after every layer, the output included
    assert all(a.negative_slope == 0.01 for a in activations)
    assert isinstance(surrogate.net[-1], nn.LeakyReLU)


def test_mlp_output_activation() -> None:
    surrogate = MLP(4, output_activation="leaky_relu")

    assert isinstance(surrogate.net[-1], nn.LeakyReLU)
    assert len([m for m in surrogate.modules() if isinstance(m, nn.LeakyReLU)]) == 4


def test_mlp_output_shape() -> None:
    surrogate = MLP(4, hidden=(8,))

    assert surrogate(torch.zeros(5, 4)).shape == (5,)


def test_highdim_preset_architecture() -> None:
    surrogate = build_surrogate("highdim", 3, num_frequencies=4)

    sizes = layer_sizes(surrogate)
    assert sizes[0] == (3 * (2 * 4 + 1), 128)
    assert sizes[1:-1] == [(128, 128)] * 7
    assert sizes[-1] == (128, 1)
    assert surrogate(torch.zeros(2, 3)).shape == (2,)


def test_positional_encoding_values() -> None:
    encoding = PositionalEncoding(3)
    u = torch.tensor([[0.5, -1.0]])

    encoded = encoding(u)

    assert encoded.shape == (1, encoding.output_dim(2)) == (1, 14)
    assert torch.equal(encoded[0, :2], u[0])
    # Per coordinate: sin(2^k u) for k = 0..2, then cos(2^k u).
    first = encoded[0, 2:8]
    expected = [math.sin(0.5 * 2**k) for k in range(3)] + [math.cos(0.5 * 2**k) for k in range(3)]
    assert torch.allclose(first, torch.tensor(expected), atol=1e-6)


def test_positional_encoding_zero_frequencies() -> None:
    u = torch.randn(3, 2)

    assert torch.equal(PositionalEncoding(0)(u), u)


def test_default_initialization_is_pytorch() -> None:
    torch.manual_seed(0)
    expected = nn.Linear(5, 64)
    torch.manual_seed(0)
    surrogate = MLP(5)

    assert torch.equal(surrogate.net[0].weight, expected.weight)
    assert torch.equal(surrogate.net[0].bias, expected.bias)


def test_shift_input_keeps_function() -> None:
    torch.manual_seed(0)
    surrogate = MLP(4, hidden=(16, 16))
    u = torch.randn(6, 4)
    delta = torch.tensor([0.5, -1.0, 2.0, 0.0])
    before = surrogate(u)

    assert surrogate.shift_input(delta)

    assert torch.allclose(surrogate(u - delta), before, atol=1e-5)


def test_shift_input_refused_with_encoding() -> None:
    surrogate = MLP(2, encoding=PositionalEncoding(2))
    bias = surrogate.net[0].bias.clone()

    assert not surrogate.shift_input(torch.ones(2))
    assert torch.equal(surrogate.net[0].bias, bias)


@pytest.mark.parametrize("output_activation", [None, "leaky_relu"])
def test_scale_output_multiplies(output_activation: str | None) -> None:
    torch.manual_seed(0)
    surrogate = MLP(3, hidden=(8,), output_activation=output_activation)
    u = torch.randn(5, 3)
    before = surrogate(u)

    assert surrogate.scale_output(2.5)

    assert torch.allclose(surrogate(u), 2.5 * before, atol=1e-6)


def test_custom_module_used_as_is() -> None:
    module = nn.Sequential(nn.Linear(3, 1))

    assert build_surrogate(module, 3) is module


def test_custom_module_trained_by_zerograds() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))  # `(n, 1)` output
    weight = module[0].weight.detach().clone()
    opt = zg.ZeroGrads([1.0, 2.0, 3.0], seed=0, surrogate=module)

    points = opt.ask()
    opt.tell(points, (points**2).sum(dim=1))

    assert opt.surrogate is module
    assert not torch.equal(module[0].weight, weight)
    assert opt.iteration == 1


def test_kwargs_with_custom_module_rejected() -> None:
    with pytest.raises(
        ValueError,
        match=r"`surrogate_kwargs` apply only to the named presets, got \{'hidden': \(8,\)\}",
    ):
        build_surrogate(nn.Linear(3, 1), 3, hidden=(8,))


def test_unknown_preset_rejected() -> None:
    message = r"`surrogate` must be one of 'mlp', 'reference', 'highdim'.*got 'cnn'"
    with pytest.raises(ValueError, match=message):
        build_surrogate("cnn", 3)


def test_output_activation_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"`output_activation` must be None or 'leaky_relu', got 'relu'"
    ):
        MLP(3, output_activation="relu")


def test_hidden_width_rejected() -> None:
    with pytest.raises(ValueError, match=r"`hidden` must be an integer >= 1, got 0"):
        MLP(3, hidden=(8, 0))


def test_num_frequencies_rejected() -> None:
    with pytest.raises(ValueError, match=r"`num_frequencies` must be an integer >= 0, got -1"):
        PositionalEncoding(-1)


def test_scalable_preset_architecture() -> None:
    surrogate = build_surrogate("scalable", 9, rank=4)

    assert layer_sizes(surrogate) == [(9, 4), (4, 64), (64, 64), (64, 64), (64, 1)]
    assert surrogate(torch.zeros(3, 9)).shape == (3,)


@pytest.mark.parametrize("dim", [1, 10, 1000])
@pytest.mark.parametrize("rank", [1, 16])
def test_scalable_parameter_count(dim: int, rank: int) -> None:
    surrogate = build_surrogate("scalable", dim, rank=rank)

    count = sum(p.numel() for p in surrogate.parameters())
    assert count == scalable_parameter_count(dim, rank)
    # Linear in d: rank weights per input, plus a part that does not depend on d.
    assert count == rank * dim + scalable_parameter_count(0, rank)


def test_scalable_smaller_than_other_presets() -> None:
    dim = 500

    def count(spec: str) -> int:
        return sum(p.numel() for p in build_surrogate(spec, dim).parameters())

    assert count("scalable") < count("mlp") < count("highdim")
    assert count("scalable") - scalable_parameter_count(0) == 16 * dim


def test_scalable_gradient_flows() -> None:
    torch.manual_seed(0)
    surrogate = build_surrogate("scalable", 20)
    u = torch.randn(4, 20, requires_grad=True)

    surrogate(u).sum().backward()

    assert u.grad is not None and bool(u.grad.abs().sum() > 0)
    for name, parameter in surrogate.named_parameters():
        assert parameter.grad is not None, name
        assert bool(parameter.grad.abs().sum() > 0), name


def test_scalable_rank_validated() -> None:
    with pytest.raises(ValueError, match="rank"):
        build_surrogate("scalable", 5, rank=0)
