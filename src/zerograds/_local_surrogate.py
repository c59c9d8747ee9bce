"""The surrogate h_φ of the objective around θ: its fit to samples and its gradient in θ."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ._fast import FastMLP
from ._fast_adam import supported_adam_group
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
        # "numba" runs the fast path as compiled calls, see zerograds._numba_mlp.
        self.kernels = "torch"
        self.fast: FastMLP | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Return the state to copy or pickle, without the fast path.

        The fast path contains views of the network's buffers, and numba's typed lists, which
        cannot be pickled. ``fast_mlp`` builds it again from the copied network and optimizer.
        """
        state = self.__dict__.copy()
        state["fast"] = None
        return state

    def fit(
        self, fit_points: torch.Tensor, values: torch.Tensor, center: torch.Tensor, batch: object
    ) -> None:
        """Fit h_φ to ``values`` at ``fit_points`` with k_φ Adam updates of the MSE."""
        centered = self.value_normalization == "running"
        fast = self.fast_mlp(batch) if self.kernels == "numba" else None
        numba = fast.numba if fast is not None else None
        if centered and numba is not None and values.numel() > 1:
            # The same steps with one compiled call and numpy views, see zerograds._numba_mlp.
            from ._numba_kernels import center_values as numba_center

            previous = self.running_scale.scale
            centered_values = np.empty(values.shape[0], numba.dtype)
            std = numba_center(np.ascontiguousarray(values.detach().numpy()), centered_values)
            scale = self.running_scale.update_std(std)
            targets = torch.from_numpy(centered_values / scale)
            if previous > 0.0:
                numba.scale_output(previous / scale)
        elif centered:
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

    def numba_fit_and_step(
        self,
        fit_points: torch.Tensor,
        values: torch.Tensor,
        theta: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        batch: object,
    ) -> tuple[bool, torch.Tensor] | None:
        """Fit and take one θ step in one compiled call, where both apply.

        That needs ``numba_theta_step``'s conditions, the ``"running"`` value normalization
        and at most ``FastMLP.numba_max_rows`` fit points. Returns what ``numba_theta_step``
        returns. None means that nothing was changed.
        """
        if self.value_normalization != "running" or values.numel() < 2:
            return None
        checked = self._numba_theta_state(theta, optimizer, batch)
        if checked is None:
            return None
        fast, state, group = checked
        if fit_points.shape[0] > fast.numba_max_rows:
            return None
        finite, gradient, self.value_scale = fast.numba.fit_and_step(
            fit_points, values, self.running_scale, self.steps, theta, state, group
        )
        return finite, gradient

    def numba_theta_step(
        self, theta: torch.Tensor, optimizer: torch.optim.Optimizer, batch: object
    ) -> tuple[bool, torch.Tensor] | None:
        """Step θ's Adam along the surrogate's gradient in one compiled call.

        Returns whether the gradient was finite (θ moved only then) and the gradient. Returns
        None where the compiled step does not apply. That is the case without a numba fast
        path, with an input map other than the identity or a positional encoding, and with a
        θ optimizer other than a plain Adam.
        """
        checked = self._numba_theta_state(theta, optimizer, batch)
        if checked is None:
            return None
        fast, state, group = checked
        return fast.numba.theta_step(theta, state, group, self.value_scale)

    def _numba_theta_state(
        self, theta: torch.Tensor, optimizer: torch.optim.Optimizer, batch: object
    ) -> tuple[FastMLP, dict[str, Any], dict[str, Any]] | None:
        """Return the numba fast path, θ's Adam state and group, or None if they do not apply."""
        fast = self.fast_mlp(batch)
        if (
            fast is None
            or fast.numba is None
            or fast.encoding is not None
            or self.input_map.kind != "none"
        ):
            return None
        group = supported_adam_group(optimizer)
        if group is None or len(group["params"]) != 1 or group["params"][0] is not theta:
            return None
        state = optimizer.state[theta]
        if not state or theta.dtype != fast.adam.param.dtype:
            return None
        return fast, state, group

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
            self.fast = FastMLP(self.network, self.optimizer, kernels=self.kernels)
        return self.fast
