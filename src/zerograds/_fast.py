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
* ``FlatAdam`` keeps all of the surrogate's parameters, gradients and Adam moments in four flat
  buffers, so one Adam update is one fused kernel call (or seven tensor ops without
  ``fused=True``) on one buffer. The moments stay registered in the ``torch.optim.Adam``
  instance's ``state``, so its ``state_dict`` is unchanged.
* ``adam_step`` repeats ``torch.optim.Adam``'s update for one parameter (θ).

Both Adam replicas call the kernels that ``torch.optim.Adam.step`` calls for the same settings:
``torch._fused_adam_`` with ``fused=True``, else the single-tensor ops. So the results are the
same bit for bit, which ``tests/test_fast.py`` checks against the autograd path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .surrogate import MLP, PositionalEncoding

_leaky_relu_backward = torch.ops.aten.leaky_relu_backward.default
_NUMPY_DTYPES = (torch.float32, torch.float64)


def supported_adam_group(optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Return the only param group of a plain ``torch.optim.Adam``, or None if unsupported.

    Supported means float hyperparameters and no weight decay, AMSGrad, maximize, capturable,
    differentiable or foreach mode: ``torch.optim.Adam`` then runs its fused kernel
    (``fused=True``) or its single-tensor update.
    """
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if (
        group.get("weight_decay", 0) != 0
        or group.get("amsgrad")
        or group.get("maximize")
        or group.get("capturable")
        or group.get("differentiable")
        or group.get("foreach")
        or group.get("decoupled_weight_decay")
        or not isinstance(group["lr"], float)
        or not all(isinstance(beta, float) for beta in group["betas"])
    ):
        return None
    return group


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: torch.Tensor,
    group: dict[str, Any],
    denom: torch.Tensor | None = None,
    increment: bool = True,
) -> None:
    """Apply one Adam update in place, as ``torch.optim.Adam`` does.

    ``step`` is the 0-dim step count of the state; it is incremented first unless the caller
    did that already (``increment=False``). ``denom``, shaped like ``param``, is scratch space
    for the single-tensor update that saves an allocation.
    """
    beta1, beta2 = group["betas"]
    if increment:
        step += 1
    if group["fused"]:
        torch._fused_adam_(
            [param],
            [grad],
            [exp_avg],
            [exp_avg_sq],
            [],
            [step],
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=group["eps"],
            maximize=False,
        )
        return
    _single_tensor_update(param, grad, exp_avg, exp_avg_sq, step.item(), group, denom)


def _single_tensor_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: float,
    group: dict[str, Any],
    denom: torch.Tensor | None,
) -> None:
    # The ops and order of torch.optim.adam._single_tensor_adam without weight decay.
    beta1, beta2 = group["betas"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = group["lr"] / bias_correction1
    denom = torch.sqrt(exp_avg_sq, out=denom)
    denom.div_(bias_correction2**0.5).add_(group["eps"])
    param.addcdiv_(exp_avg, denom, value=-step_size)


def adam_step(optimizer: torch.optim.Optimizer, param: torch.Tensor, grad: torch.Tensor) -> bool:
    """Step a one-parameter ``torch.optim.Adam`` along ``grad`` like ``optimizer.step()``.

    Creates the state the way torch does on the first step. Returns False, and changes
    nothing, when the optimizer's settings are outside ``supported_adam_group``.
    """
    group = supported_adam_group(optimizer)
    if group is None or len(group["params"]) != 1 or group["params"][0] is not param:
        return False
    state = optimizer.state[param]
    if not state:
        state["step"] = _new_step(group, param.device)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    with torch.no_grad():
        adam_update(param, grad, state["exp_avg"], state["exp_avg_sq"], state["step"], group)
    return True


def _new_step(group: dict[str, Any], device: torch.device, count: int = 0) -> torch.Tensor:
    """Return a step count laid out as ``torch.optim.Adam`` creates it."""
    if group["fused"]:
        return torch.full((count,) if count else (), 0.0, dtype=torch.float32, device=device)
    # Without fused mode torch keeps the count on the CPU, in float64 when that is the
    # default dtype.
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.full((count,) if count else (), 0.0, dtype=dtype)


class FlatAdam:
    """``torch.optim.Adam`` over parameters that share one flat buffer.

    On construction the parameters' values, and any Adam state they have, are copied into flat
    buffers, and each parameter, its ``.grad`` and its ``exp_avg``, ``exp_avg_sq`` and ``step``
    become views of them. ``valid`` reports whether that layout still holds: loading a state
    dict into the optimizer replaces its state tensors, and then a new ``FlatAdam`` must be
    built.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        self.optimizer = optimizer
        self.params = params
        first = params[0]
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        options = {"device": first.device, "dtype": first.dtype}
        self.param = torch.empty(total, **options)
        self.grad = torch.zeros(total, **options)
        self.exp_avg = torch.zeros(total, **options)
        self.exp_avg_sq = torch.zeros(total, **options)
        self.steps = _new_step(optimizer.param_groups[0], first.device, len(params))
        old_states = [optimizer.state.get(p) for p in params]
        counts = {float(s["step"]) for s in old_states if s}
        if len(counts) > 1 or (counts and not all(old_states)):
            raise ValueError("all surrogate parameters must have taken the same number of steps")
        step_count = counts.pop() if counts else 0.0

        self.views: list[tuple[torch.Tensor, ...]] = []
        offset = 0
        with torch.no_grad():
            for p, size, old in zip(params, sizes, old_states, strict=True):
                shape = p.shape
                chunk = slice(offset, offset + size)
                param_view = self.param[chunk].view(shape)
                param_view.copy_(p)
                p.data = param_view
                grad_view = self.grad[chunk].view(shape)
                p.grad = grad_view
                avg_view = self.exp_avg[chunk].view(shape)
                sq_view = self.exp_avg_sq[chunk].view(shape)
                step_view = self.steps[len(self.views)]
                if old:
                    avg_view.copy_(old["exp_avg"])
                    sq_view.copy_(old["exp_avg_sq"])
                step_view.fill_(step_count)
                # Same keys, in the same order, as torch.optim.Adam's lazy initialization.
                optimizer.state[p] = {"step": step_view, "exp_avg": avg_view, "exp_avg_sq": sq_view}
                self.views.append((p, param_view, grad_view, avg_view, sq_view, step_view))
                offset += size
        self.state_map = optimizer.state
        self.fused = bool(optimizer.param_groups[0]["fused"])
        self.first_step = self.steps[0]
        self.other_steps = self.steps[1:]
        # On the CPU one numpy call increments all step counts, in place of two torch calls.
        self.steps_array = self.steps.numpy() if self.steps.device.type == "cpu" else None
        self.denom = None if self.fused else torch.empty(total, **options)

    def valid(self) -> bool:
        """Return whether the parameters and the optimizer state are still views of the buffers."""
        optimizer = self.optimizer
        if optimizer.state is not self.state_map:
            return False
        group = supported_adam_group(optimizer)
        if group is None or bool(group["fused"]) != self.fused:
            return False
        states = self.state_map
        for p, param_view, grad_view, avg_view, sq_view, step_view in self.views:
            state = states.get(p)
            if (
                state is None
                or state.get("exp_avg") is not avg_view
                or state.get("exp_avg_sq") is not sq_view
                or state.get("step") is not step_view
                or p.grad is not grad_view
                or p.data_ptr() != param_view.data_ptr()
            ):
                return False
        return True

    def step(self) -> None:
        """Apply one Adam update to all parameters from the flat gradient buffer."""
        # All parameters share one step count, so the first one's drives the update.
        if self.steps_array is not None:
            self.steps_array += 1
        adam_update(
            self.param,
            self.grad,
            self.exp_avg,
            self.exp_avg_sq,
            self.first_step,
            self.optimizer.param_groups[0],
            self.denom,
            increment=self.steps_array is None,
        )
        if self.steps_array is None:
            self.other_steps.add_(1)


class FastMLP:
    """Fit and differentiate a ``zerograds.surrogate.MLP`` without autograd.

    Args:
        surrogate: the network; ``supports`` must hold for it.
        optimizer: its ``torch.optim.Adam``, holding exactly ``surrogate.parameters()``.
        use_numpy: run the elementwise steps in numpy on preallocated buffers, or with False
            every step in torch. Both give autograd's results bit for bit. Default: numpy for
            float32 and float64 weights on the CPU, which ``use_numpy=True`` requires.
    """

    def __init__(
        self, surrogate: MLP, optimizer: torch.optim.Optimizer, use_numpy: bool | None = None
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
            if self.use_numpy:
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
