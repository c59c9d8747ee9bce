"""The surrogate h_φ of the objective around θ: its fit to samples and its gradient in θ."""

from __future__ import annotations

import torch
from torch import nn

from ._fast import FastMLP
from .normalization import InputMap, ValueScale, normalize_values


class LocalSurrogate:
    """The network h_φ with its optimizer, input frame and value scale.

    Args:
        network: maps `(n, d)` normalized inputs to `(n,)` values.
        optimizer: the optimizer of ``network``'s parameters.
        input_map: the normalization of ``network``'s inputs.
        value_normalization: one of ``zerograds.normalization.VALUE_NORMALIZATIONS``.
        steps: optimizer updates k_φ per fit.

    ``fit`` and ``gradient`` take ``batch``, a key of the caller's current batch: the layout
    check of the fast path runs once per key (see ``fast_mlp``).
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        input_map: InputMap,
        value_normalization: str,
        steps: int,
    ) -> None:
        self.network = network
        self.optimizer = optimizer
        self.input_map = input_map
        self.value_normalization = value_normalization
        self.steps = steps
        self.value_scale = 1.0
        self.running_scale = ValueScale()
        self.exact_recenter = True
        # Autograd-free fit and gradient for the built-in MLP with Adam, see zerograds._fast.
        # False switches it off, and ZeroGrads then also steps θ with ``Optimizer.step``.
        self.fast_path = True
        self.fast: FastMLP | None = None

    def fit(
        self, fit_points: torch.Tensor, values: torch.Tensor, center: torch.Tensor, batch: object
    ) -> None:
        """Fit h_φ to ``values`` at ``fit_points`` with k_φ Adam updates of the MSE."""
        centered = self.value_normalization == "running"
        if centered:
            previous = self.running_scale.scale
            scale = self.running_scale.update(values)
            targets = (values - values.mean()) / scale
            # Keep h_φ's function in the user's units when the running scale moves.
            if previous > 0.0 and hasattr(self.network, "scale_output"):
                self.network.scale_output(previous / scale)
        else:
            targets, scale = normalize_values(values, self.value_normalization)
        self.recenter(center)
        self.value_scale = scale
        inputs = self.input_map(fit_points)
        fast = self.fast_mlp(batch)
        if fast is not None:
            fast.fit(inputs, targets, centered, self.steps)
            return
        for _ in range(self.steps):
            self.optimizer.zero_grad(set_to_none=True)
            prediction = self.network(inputs).reshape(-1)
            if centered:
                prediction = prediction - prediction.mean()
            loss = torch.mean((prediction - targets) ** 2)
            loss.backward()
            self.optimizer.step()

    def recenter(self, center: torch.Tensor) -> None:
        """Move the input frame's origin to ``center``.

        With ``"local"`` normalization the surrogate absorbs the shift, so that an MLP
        keeps modelling the same function of x while its inputs stay O(1) around θ.
        """
        if self.input_map.kind != "local":
            return
        delta = (center - self.input_map.center) / self.input_map.scale
        if self.exact_recenter and hasattr(self.network, "shift_input"):
            self.network.shift_input(delta)
        self.input_map.recenter(center)

    def gradient(self, theta: torch.Tensor, batch: object) -> torch.Tensor:
        """Return ∇_θ h_φ(θ) in the user's units, `(d,)`."""
        fast = self.fast_mlp(batch)
        if fast is not None:
            point = theta.detach().unsqueeze(0)
            if self.input_map.kind == "none":
                # The map is the identity bit for bit (x - 0 == x, x / 1 == x), so skip it.
                gradient = fast.input_gradient(point)
            else:
                inputs = self.input_map(point)
                gradient = fast.input_gradient(inputs) / self.input_map.scale
            # A new tensor, so scaling it in place is safe.
            return gradient.squeeze(0).mul_(self.value_scale)
        point = theta.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            output = self.network(self.input_map(point.unsqueeze(0))).sum()
            (gradient,) = torch.autograd.grad(output, point)
        return gradient * self.value_scale

    def fast_mlp(self, batch: object) -> FastMLP | None:
        """Return the autograd-free trainer of the surrogate, or None where it does not apply."""
        fast = self.fast
        # Nothing outside ZeroGrads runs between the calls within one tell, so one check of
        # the layout per batch (the caller's key) is enough.
        if fast is not None and (fast.checked_batch == batch or fast.adam.valid()):
            fast.checked_batch = batch
            return fast
        self.fast = None
        if self.fast_path and FastMLP.supports(self.network, self.optimizer):
            self.fast = FastMLP(self.network, self.optimizer)
        return self.fast
