"""Maps between the user's units and the surrogate's input and output spaces.

Input normalization is an affine map ``u = (x - center) / scale``:

* ``"local"``: ``center`` is θ at the time the batch was sampled and ``scale`` is σ, so the
  surrogate always sees perturbations of unit size around its origin, and the origin of the
  user's coordinates plays no role. When the center moves, an ``MLP`` surrogate absorbs the
  shift into its first layer's bias, so it keeps modelling the same function of x.
* ``"start"``: a fixed frame centered at x0 with scale σ.
* ``"bounds"``: maps the box ``[lower, upper]`` onto ``[-1, 1]``.
* ``"none"``: the identity, as in the reference code of Fischer and Ritschel (2024).

Value normalization rescales the objective values of a fit before it runs. With a replay
buffer, "batch" below means all points of the fit, the stored batches included:

* ``"running"``: subtract the batch mean and divide by a running average of the batch
  standard deviations; the fit compares predictions and targets after removing each one's batch
  mean, so only differences within a batch are fitted. When the running scale changes, the
  surrogate's output layer is rescaled so that its function in the user's units stays the same.
* ``"batch"``: subtract the batch mean and divide by the batch standard deviation.
* ``"none"``: fit the raw values, as the paper's reference code does.

The gradient handed to θ is always in the user's units: the chain rule through both maps is
applied by autograd and by multiplying with the value scale.
"""

from __future__ import annotations

import torch

INPUT_NORMALIZATIONS = ("local", "start", "bounds", "none")
VALUE_NORMALIZATIONS = ("batch", "running", "none")


class InputMap:
    """Affine input normalization ``u = (x - center) / scale``.

    Args:
        kind: one of ``INPUT_NORMALIZATIONS``.
        sigma: sampling standard deviation, the scale of ``"local"``.
        bounds: ``(lower, upper)`` tensors of shape `(d,)`, required by ``"bounds"``.
    """

    def __init__(
        self,
        kind: str,
        sigma: float,
        dim: int,
        bounds: tuple[torch.Tensor, torch.Tensor] | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.kind = kind
        self.center = torch.zeros(dim, device=device, dtype=dtype)
        if kind in ("local", "start"):
            self.scale = torch.full((dim,), sigma, device=device, dtype=dtype)
        elif kind == "bounds":
            if bounds is None:
                raise ValueError("`input_normalization`='bounds' requires `bounds`, got None")
            lower, upper = bounds
            self.center = ((lower + upper) / 2).to(device, dtype)
            half_width = ((upper - lower) / 2).to(device, dtype)
            self.scale = torch.where(half_width > 0, half_width, torch.ones_like(half_width))
        else:
            self.scale = torch.ones(dim, device=device, dtype=dtype)

    def recenter(self, theta: torch.Tensor) -> None:
        """Move the frame's origin to ``theta`` (``"local"`` only)."""
        if self.kind == "local":
            self.center = theta.detach().clone()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - center) / scale``; for ``"none"`` that is ``x`` itself, not a copy."""
        if self.kind == "none":
            # x - 0 == x and x / 1 == x bit for bit, so skip two passes over the (n, d) input.
            return x
        return (x - self.center) / self.scale


class ValueScale:
    """Running scale of the objective's batch spread, an exponential moving average.

    Args:
        decay: weight of the old estimate in each update, in [0, 1).
    """

    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self.scale = 0.0

    def update(self, values: torch.Tensor) -> float:
        """Fold the standard deviation of ``values`` into the running scale and return it."""
        std = float(values.std(unbiased=False)) if values.numel() > 1 else 0.0
        return self.update_std(std)

    def update_std(self, std: float) -> float:
        """Fold a batch's standard deviation ``std`` into the running scale and return it."""
        if std > 0.0:
            self.scale = (
                std if self.scale == 0.0 else (self.decay * self.scale + (1.0 - self.decay) * std)
            )
        return self.scale if self.scale > 0.0 else 1.0


def normalize_values(values: torch.Tensor, kind: str) -> tuple[torch.Tensor, float]:
    """Return the fit targets and the scale ``s`` with ``values ≈ s * targets + offset``."""
    if kind == "none" or values.numel() < 2:
        return values, 1.0
    mean = values.mean()
    std = values.std(unbiased=False)
    scale = float(std)
    if not scale > 0.0:
        return values - mean, 1.0
    return (values - mean) / std, scale
