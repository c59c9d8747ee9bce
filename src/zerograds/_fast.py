"""Fast path of the surrogate fit and the θ step, without autograd or ``Optimizer.step``.

Each iteration fits a small network on a few points and steps θ once, so the per-call
overhead of autograd and of ``torch.optim.Optimizer.step`` dominates the time of an eager
loop. This module computes the same values with fewer and cheaper calls:

* ``FastMLP`` writes out the forward and backward passes of ``zerograds.surrogate.MLP``, with
  the operations autograd runs for ``nn.Linear`` and ``nn.LeakyReLU``, so the gradients equal
  autograd's bit for bit. On the CPU, for float32 and float64, it writes into preallocated
  tensors and runs the elementwise steps whose rounding does not depend on the library in
  numpy, on views of the same memory. A numpy call on a few hundred numbers costs well under a
  microsecond, a torch call one to two.
* ``FlatAdam`` and ``adam_step`` (in ``zerograds._fast_adam``) repeat ``torch.optim.Adam``'s
  update with fewer calls, for the surrogate's parameters and for θ.

``tests/test_fast.py`` checks that the results equal the autograd path's bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ._fast_adam import FlatAdam, supported_adam_group
from .surrogate import MLP, PositionalEncoding

_leaky_relu_backward = torch.ops.aten.leaky_relu_backward.default
_NUMPY_DTYPES = (torch.float32, torch.float64)


class FastMLP:
    """Fit and differentiate a ``zerograds.surrogate.MLP`` without autograd.

    Args:
        surrogate: the network; ``supports`` must hold for it.
        optimizer: its ``torch.optim.Adam``, holding exactly ``surrogate.parameters()``.
        use_numpy: run the elementwise steps in numpy on preallocated buffers, or with False
            every step in torch. Both give autograd's results bit for bit. Default: numpy for
            float32 and float64 weights on the CPU, which ``use_numpy=True`` requires.
        kernels: ``"numba"`` runs the fit and the input gradient as compiled calls
            (``zerograds._numba_mlp``), which needs float32 or float64 weights on the CPU;
            ``"torch"`` runs the torch and numpy calls of this module.
    """

    def __init__(
        self,
        surrogate: MLP,
        optimizer: torch.optim.Optimizer,
        use_numpy: bool | None = None,
        kernels: str = "torch",
    ) -> None:
        self.surrogate = surrogate
        self.encoding = surrogate.encoding
        modules = list(surrogate.net)
        self.output_slope: float | None = None
        if isinstance(modules[-1], nn.LeakyReLU):
            self.output_slope = modules.pop().negative_slope
        # (weight, bias, slope of the leaky ReLU after the layer or None for the output layer)
        self.layers: list[tuple[nn.Parameter, nn.Parameter, float | None]] = []
        for index in range(0, len(modules) - 1, 2):
            linear = modules[index]
            self.layers.append((linear.weight, linear.bias, modules[index + 1].negative_slope))
        self.layers.append((modules[-1].weight, modules[-1].bias, None))
        self.adam = FlatAdam(optimizer, list(surrogate.parameters()))
        # (weight gradient, bias gradient) of each layer, views of the flat gradient buffer
        self.grads = [
            (self.adam.views[2 * i][2], self.adam.views[2 * i + 1][2])
            for i in range(len(self.layers))
        ]

        numpy_ok = self.adam.param.device.type == "cpu" and self.adam.param.dtype in _NUMPY_DTYPES
        if use_numpy and not numpy_ok:
            raise ValueError(
                "`use_numpy`=True needs float32 or float64 weights on the CPU, got "
                f"{self.adam.param.dtype} on {self.adam.param.device}"
            )
        self.use_numpy = numpy_ok if use_numpy is None else use_numpy
        # Each layer's (weight, weight transposed, bias, slope, weight gradient, bias gradient)
        # as plain tensors that share the flat buffers. The slope is that of the leaky ReLU
        # after the layer, for the last layer that of the output activation or None.
        self.plain_layers: list[tuple[Any, ...]] = []
        views = self.adam.views
        for index, (_, _, slope) in enumerate(self.layers):
            weight, weight_grad = views[2 * index][1:3]
            bias, bias_grad = views[2 * index + 1][1:3]
            if index == len(self.layers) - 1:
                slope = self.output_slope
            self.plain_layers.append((weight, weight.t(), bias, slope, weight_grad, bias_grad))
        self._scratch: dict[int, _Scratch] = {}
        # Set by the caller to the batch whose ``adam.valid()`` check it last passed.
        self.checked_batch: object = None
        self.numba: Any = None
        self.numba_max_rows = 0
        if kernels == "numba":
            from ._numba_mlp import NumbaMLP

            self.numba = NumbaMLP(self)
            self.numba_max_rows = self.numba.max_rows

    @staticmethod
    def supports(surrogate: nn.Module, optimizer: torch.optim.Optimizer) -> bool:
        """Return whether ``FastMLP`` reproduces autograd and ``optimizer.step()`` for this pair."""
        if type(surrogate) is not MLP or supported_adam_group(optimizer) is None:
            return False
        if surrogate.encoding is not None and type(surrogate.encoding) is not PositionalEncoding:
            return False
        modules = list(surrogate.net)
        if isinstance(modules[-1], nn.LeakyReLU):
            modules.pop()
        kinds_ok = all(
            type(m) is (nn.Linear if i % 2 == 0 else nn.LeakyReLU) for i, m in enumerate(modules)
        )
        if not kinds_ok or len(modules) % 2 != 1:
            return False
        for module in surrogate.modules():
            if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
                return False
        params = list(surrogate.parameters())
        if not all(p.requires_grad for p in params):
            return False
        group_params = optimizer.param_groups[0]["params"]
        return len(group_params) == len(params) and all(
            a is b for a, b in zip(group_params, params, strict=True)
        )

    def fit(self, inputs: torch.Tensor, targets: torch.Tensor, centered: bool, steps: int) -> None:
        """Run ``steps`` Adam updates of the mean squared error at ``inputs``, `(n, d)`.

        ``targets`` has shape `(n,)`, for any n >= 1. With ``centered``, predictions and targets
        are compared after removing the predictions' batch mean, as in ``ZeroGrads._fit``.
        """
        if self.encoding is not None:
            with torch.no_grad():
                inputs = self.encoding(inputs)
        if self.numba is not None and inputs.shape[0] <= self.numba_max_rows:
            self.numba.fit(inputs, targets, centered, steps)
            return
        if self.use_numpy:
            self._fit_mixed(inputs.detach(), targets.detach().numpy(), centered, steps)
            return
        with torch.no_grad():
            count = targets.shape[0]
            inverse_count = torch.ones((), dtype=targets.dtype, device=targets.device) / count
            for _ in range(steps):
                self._fit_step(inputs, targets, centered, count, inverse_count)

    def _fit_mixed(
        self, inputs: torch.Tensor, targets: np.ndarray, centered: bool, steps: int
    ) -> None:
        """``fit`` with torch's kernels where their results depend on the library.

        Each step runs the operations of ``_fit_step`` in the same order, so the weights equal
        autograd's bit for bit. Matrix products, sums and the leaky ReLU's backward stay in
        torch. The leaky ReLU's forward and the loss gradient's elementwise ops run in numpy,
        because single float operations round the same there and cost less per call.
        """
        count = inputs.shape[0]
        scratch = self._scratch_for(count)
        layers = self.plain_layers
        last = len(layers) - 1
        if layers[last][3] is None:
            prediction_t = scratch.pre_activations_t[last].view(count)
        else:
            prediction_t = scratch.activations_t[last].view(count)
        prediction = prediction_t.numpy()
        gradient_rows = scratch.output_grad.reshape(count)
        inverse_count = np.ones((), prediction.dtype) / count
        for _ in range(steps):
            self._forward_mixed(inputs, scratch, len(layers))

            # Gradient of mean((p - mean(p) - t)²) in p as autograd forms it (see _fit_step).
            if centered:
                torch.mean(prediction_t, 0, out=scratch.mean_t)
                np.subtract(prediction, scratch.mean, out=gradient_rows)
                gradient_rows -= targets
            else:
                np.subtract(prediction, targets, out=gradient_rows)
            gradient_rows *= 2.0
            gradient_rows *= inverse_count
            if centered:
                torch.sum(scratch.output_grad_rows_t, 0, out=scratch.mean_t)
                gradient_rows += -scratch.mean / count

            # Backward: `gradient` enters each layer as the gradient in its activated output.
            gradient = scratch.output_grad_t
            for index in range(last, -1, -1):
                weight, _, _, slope, weight_grad, bias_grad = layers[index]
                if slope is not None:
                    gradient = _leaky_relu_backward(
                        gradient, scratch.pre_activations_t[index], slope, False
                    )
                layer_input = scratch.activations_t[index - 1] if index > 0 else inputs
                torch.mm(gradient.t(), layer_input, out=weight_grad)
                torch.sum(gradient, 0, out=bias_grad)
                if index > 0:
                    gradient = torch.mm(gradient, weight, out=scratch.input_grads_t[index - 1])
            self.adam.step()

    def _forward_mixed(self, inputs: torch.Tensor, scratch: _Scratch, count: int) -> None:
        """Run the first ``count`` layers, writing their pre-activations and activations."""
        layer_input = inputs
        for index in range(count):
            _, weight_t, bias, slope, _, _ = self.plain_layers[index]
            pre_activation_t = scratch.pre_activations_t[index]
            torch.addmm(bias, layer_input, weight_t, out=pre_activation_t)
            if slope is None:
                layer_input = pre_activation_t
                continue
            # leaky_relu(z) = z if z > 0 else z * slope. For a slope in [0, 1] that is
            # max(z, z * slope), with the same product, so the same bits.
            pre_activation, activation = scratch.pre_activations[index], scratch.activations[index]
            np.multiply(pre_activation, slope, out=activation)
            if 0.0 <= slope <= 1.0:
                np.maximum(activation, pre_activation, out=activation)
            else:
                np.copyto(activation, pre_activation, where=pre_activation > 0)
            layer_input = scratch.activations_t[index]

    def _scratch_for(self, rows: int) -> _Scratch:
        """Return the work buffers for ``rows`` input rows, kept for the last few row counts."""
        scratch = self._scratch.get(rows)
        if scratch is None:
            if len(self._scratch) >= 4:
                self._scratch.clear()
            widths = [layer[0].shape[0] for layer in self.plain_layers]
            scratch = _Scratch(rows, widths, self.plain_layers[0][0].dtype)
            self._scratch[rows] = scratch
        return scratch

    def _fit_step(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        centered: bool,
        count: int,
        inverse_count: torch.Tensor,
    ) -> None:
        activations, pre_activations = self._forward(inputs)
        prediction = activations[-1].reshape(-1)

        # Gradient of mean((p - mean(p) - t)²) with respect to p, as autograd forms it.
        residual = prediction - prediction.mean() if centered else prediction
        gradient = inverse_count * (2.0 * (residual - targets))
        if centered:
            gradient = gradient + (-gradient).sum() / count
        gradient = gradient.view(count, 1)

        if self.output_slope is not None:
            gradient = _leaky_relu_backward(gradient, pre_activations[-1], self.output_slope, False)
        layers = self.layers
        for index in range(len(layers) - 1, -1, -1):
            weight_grad, bias_grad = self.grads[index]
            torch.mm(gradient.t(), activations[index], out=weight_grad)
            torch.sum(gradient, 0, out=bias_grad)
            if index > 0:
                gradient = gradient.mm(layers[index][0])
                slope = layers[index - 1][2]
                gradient = _leaky_relu_backward(gradient, pre_activations[index - 1], slope, False)
        self.adam.step()

    def _forward(self, inputs: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Return the layer inputs (last: the output) and the pre-activation of each layer."""
        activations = [inputs]
        pre_activations = []
        value = inputs
        for weight, bias, slope in self.layers:
            value = torch.addmm(bias, value, weight.t())
            pre_activations.append(value)
            if slope is not None:
                value = torch.nn.functional.leaky_relu(value, slope)
                activations.append(value)
        if self.output_slope is not None:
            value = torch.nn.functional.leaky_relu(value, self.output_slope)
        activations.append(value)
        return activations, pre_activations

    def input_gradient(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return ∇_u Σ h(u) at ``inputs``, `(n, d)`, the surrogate's gradient in its input."""
        with torch.no_grad():
            encoded = self.encoding(inputs) if self.encoding is not None else inputs
            if self.numba is not None:
                gradient = self.numba.input_gradient(encoded)
            elif self.use_numpy:
                gradient = self._input_gradient_mixed(encoded.detach())
            else:
                gradient = self._input_gradient_torch(encoded)
        if self.encoding is None:
            return gradient
        point = inputs.detach().requires_grad_(True)
        with torch.enable_grad():
            (result,) = torch.autograd.grad(self.encoding(point), point, gradient)
        return result

    def _input_gradient_torch(self, encoded: torch.Tensor) -> torch.Tensor:
        _, pre_activations = self._forward(encoded)
        gradient = torch.ones_like(pre_activations[-1])
        if self.output_slope is not None:
            gradient = _leaky_relu_backward(gradient, pre_activations[-1], self.output_slope, False)
        for index in range(len(self.layers) - 1, -1, -1):
            gradient = gradient.mm(self.layers[index][0])
            if index > 0:
                slope = self.layers[index - 1][2]
                gradient = _leaky_relu_backward(gradient, pre_activations[index - 1], slope, False)
        return gradient

    def _input_gradient_mixed(self, inputs: torch.Tensor) -> torch.Tensor:
        """``_input_gradient_torch`` with the forward pass of ``_fit_mixed``; the same bits."""
        layers = self.plain_layers
        last = len(layers) - 1
        scratch = self._scratch_for(inputs.shape[0])
        # The output layer's value matters only through an output activation.
        self._forward_mixed(inputs, scratch, last + (layers[last][3] is not None))
        scratch.output_grad.fill(1)
        gradient = scratch.output_grad_t
        for index in range(last, -1, -1):
            weight, _, _, slope, _, _ = layers[index]
            if slope is not None:
                gradient = _leaky_relu_backward(
                    gradient, scratch.pre_activations_t[index], slope, False
                )
            if index == 0:
                # A new tensor: the caller keeps it.
                return torch.mm(gradient, weight)
            gradient = torch.mm(gradient, weight, out=scratch.input_grads_t[index - 1])
        raise AssertionError("unreachable: the loop returns at the first layer")


class _Scratch:
    """Work buffers of ``FastMLP`` for one row count: torch tensors and numpy views of them."""

    def __init__(self, rows: int, widths: list[int], dtype: torch.dtype) -> None:
        # Each layer's output before and after its leaky ReLU.
        self.pre_activations_t = [torch.empty(rows, width, dtype=dtype) for width in widths]
        self.pre_activations = [t.numpy() for t in self.pre_activations_t]
        self.activations_t = [torch.empty(rows, width, dtype=dtype) for width in widths]
        self.activations = [t.numpy() for t in self.activations_t]
        # The gradient in the input of each layer but the first.
        self.input_grads_t = [torch.empty(rows, width, dtype=dtype) for width in widths[:-1]]
        # The loss gradient in the prediction.
        self.output_grad_t = torch.empty(rows, 1, dtype=dtype)
        self.output_grad = self.output_grad_t.numpy()
        self.output_grad_rows_t = self.output_grad_t.view(rows)
        # A scalar for the batch mean and sum of the fit's loss gradient.
        self.mean_t = torch.empty((), dtype=dtype)
        self.mean = self.mean_t.numpy()
