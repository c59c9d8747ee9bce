"""Surrogate networks h_φ that ZeroGrads fits to objective values.

The default preset is wider and shallower than the paper's network, because it learned the
gradient faster on every test problem in ``docs/defaults.md``:

* ``"mlp"``: input d -> 2 hidden layers of 256 -> 1 with leaky ReLU (slope 0.01), linear output.

Two presets follow the ZeroGrads paper (Fischer and Ritschel, ACM TOG 43(4), 2024):

* ``"reference"``: input d -> 3 hidden layers of 64 -> 1 with leaky ReLU (slope 0.01) after
  every layer, the output included, as in the authors' reference code.
* ``"highdim"``: 8 hidden layers of 128 on a NeRF-style positional encoding of the input, i.e.
  the input followed by ``sin(2^k u)`` and ``cos(2^k u)`` for ``k = 0 … L-1``.

A third preset keeps memory linear in d for problems with hundreds of thousands of parameters:

* ``"scalable"``: input d -> a narrow layer of ``rank`` units (default 16) -> 3 hidden layers of
  64 -> 1, leaky ReLU throughout. The first layer has ``rank * d`` weights, against
  ``256 * d`` for ``"mlp"``, ``64 * d`` for ``"reference"`` and ``128 * (2 L + 1) * d`` for
  ``"highdim"`` (1,664 d with L = 6). See ``scalable_parameter_count``.

Any ``torch.nn.Module`` that maps `(n, d)` to `(n,)` or `(n, 1)` works as a surrogate too.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._validation import check_int, short_repr

SURROGATE_PRESETS = ("mlp", "reference", "highdim", "scalable")
SCALABLE_HIDDEN = (64, 64, 64)


class PositionalEncoding(nn.Module):
    """NeRF-style encoding: `(n, d)` -> `(n, d * (2 L + 1))`.

    Args:
        num_frequencies: ``L``, the number of octaves; frequencies are ``2^0 … 2^(L-1)``.
    """

    def __init__(self, num_frequencies: int = 6) -> None:
        super().__init__()
        self.num_frequencies = check_int("num_frequencies", num_frequencies, 0)
        self.register_buffer(
            "frequencies", 2.0 ** torch.arange(self.num_frequencies, dtype=torch.float32)
        )

    def output_dim(self, dim: int) -> int:
        """Return the encoded width for an input of ``dim`` coordinates."""
        return dim * (2 * self.num_frequencies + 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.num_frequencies == 0:
            return u
        angles = u.unsqueeze(-1) * self.frequencies.to(u.dtype)  # (n, d, L)
        encoded = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (n, 2 L d)
        return torch.cat([u, encoded], dim=-1)


class MLP(nn.Module):
    """Fully connected surrogate with leaky ReLU after each hidden layer.

    Args:
        dim: number of inputs ``d``.
        hidden: width of each hidden layer.
        negative_slope: slope of the leaky ReLU for negative inputs.
        output_activation: ``"leaky_relu"`` applies the same activation after the output layer
            (the paper's reference code does); ``None`` leaves the output linear.
        encoding: optional module applied to the input first (e.g. ``PositionalEncoding``).
        output_init_scale: factor on the output layer's default initialization; values below 1
            start the surrogate nearly flat, so its random initial slope does not steer θ.
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (64, 64, 64),
        *,
        negative_slope: float = 0.01,
        output_activation: str | None = None,
        encoding: PositionalEncoding | None = None,
        output_init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        dim = check_int("dim", dim, 1)
        if output_activation not in (None, "leaky_relu"):
            raise ValueError(
                "`output_activation` must be None or 'leaky_relu', "
                f"got {short_repr(output_activation)}"
            )
        self.encoding = encoding
        width = encoding.output_dim(dim) if encoding is not None else dim
        layers: list[nn.Module] = []
        for size in hidden:
            size = check_int("hidden", size, 1)
            layers += [nn.Linear(width, size), nn.LeakyReLU(negative_slope)]
            width = size
        output_layer = nn.Linear(width, 1)
        with torch.no_grad():
            output_layer.weight.mul_(output_init_scale)
            output_layer.bias.mul_(output_init_scale)
        layers.append(output_layer)
        if output_activation == "leaky_relu":
            layers.append(nn.LeakyReLU(negative_slope))
        self.net = nn.Sequential(*layers)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.encoding is not None:
            u = self.encoding(u)
        return self.net(u).squeeze(-1)

    @torch.no_grad()
    def shift_input(self, delta: torch.Tensor) -> bool:
        """Re-express the network for inputs ``u' = u - delta`` without changing its function.

        The first layer's bias absorbs ``W @ delta``, so ``h'(u') == h(u)``. Returns False, and
        changes nothing, when a positional encoding sits in front of the first layer.
        """
        if self.encoding is not None:
            return False
        first = self.net[0]
        first.bias.add_(first.weight @ delta.to(first.weight.dtype))
        return True

    @torch.no_grad()
    def scale_output(self, ratio: float) -> bool:
        """Multiply the network's output by ``ratio`` exactly (last layer's weight and bias).

        Returns False, and changes nothing, when an output activation follows the last layer:
        leaky ReLU is positively homogeneous, but only for ``ratio > 0``.
        """
        last = self.net[-1]
        if not isinstance(last, nn.Linear):
            if ratio <= 0.0:
                return False
            last = self.net[-2]
        last.weight.mul_(ratio)
        last.bias.mul_(ratio)
        return True


def scalable_parameter_count(dim: int, rank: int = 16) -> int:
    """Return the number of parameters of the ``"scalable"`` preset for ``dim`` inputs.

    The first layer has ``rank * (dim + 1)`` parameters; the rest do not depend on ``dim``.
    """
    widths = (rank, *SCALABLE_HIDDEN, 1)
    rest = sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(widths))
    return rank * (dim + 1) + rest


def build_surrogate(spec: str | nn.Module, dim: int, **kwargs: Any) -> nn.Module:
    """Build the surrogate named by ``spec`` for ``dim`` inputs, or return a given module.

    Args:
        spec: ``"mlp"``, ``"reference"``, ``"highdim"``, ``"scalable"``, or a
            ``torch.nn.Module`` used as it is.
        dim: number of parameters ``d``.
        **kwargs: passed to ``MLP`` (``hidden``, ``negative_slope``, ``output_activation``);
            ``"highdim"`` also takes ``num_frequencies`` (default 6), ``"scalable"`` takes
            ``rank`` (default 16), the width of its first layer.
    """
    if isinstance(spec, nn.Module):
        if kwargs:
            raise ValueError(
                "`surrogate_kwargs` apply only to the named presets, got "
                f"{short_repr(kwargs)} with a custom module"
            )
        return spec
    _check_preset_kwargs(spec, kwargs)
    if spec == "mlp":
        kwargs.setdefault("hidden", (256, 256))
        return MLP(dim, **kwargs)
    if spec == "reference":
        kwargs.setdefault("hidden", (64, 64, 64))
        kwargs.setdefault("output_activation", "leaky_relu")
        return MLP(dim, **kwargs)
    if spec == "highdim":
        num_frequencies = kwargs.pop("num_frequencies", 6)
        kwargs.setdefault("hidden", (128,) * 8)
        return MLP(dim, encoding=PositionalEncoding(num_frequencies), **kwargs)
    if spec == "scalable":
        rank = check_int("rank", kwargs.pop("rank", 16), 1)
        kwargs.setdefault("hidden", (rank, *SCALABLE_HIDDEN))
        return MLP(dim, **kwargs)
    raise ValueError(
        f"`surrogate` must be one of {', '.join(repr(p) for p in SURROGATE_PRESETS)} or a "
        f"torch.nn.Module, got {short_repr(spec)}"
    )


def _check_preset_kwargs(spec: Any, kwargs: dict[str, Any]) -> None:
    """Raise ``TypeError`` for keys of ``surrogate_kwargs`` that the preset ``spec`` ignores."""
    if spec not in SURROGATE_PRESETS:
        return  # the caller reports the unknown preset
    accepted = set(inspect.signature(MLP.__init__).parameters) - {"self", "dim"}
    if spec == "highdim":
        accepted.discard("encoding")  # the preset sets its own
    accepted.update({"highdim": {"num_frequencies"}, "scalable": {"rank"}}.get(spec, set()))
    unknown = sorted(str(key) for key in kwargs if key not in accepted)
    if unknown:
        noun = "key" if len(unknown) == 1 else "keys"
        raise TypeError(
            f"`surrogate_kwargs` got unknown {noun} {', '.join(repr(k) for k in unknown)} for the "
            f"surrogate {spec!r}; it accepts {', '.join(repr(k) for k in sorted(accepted))}"
        )
