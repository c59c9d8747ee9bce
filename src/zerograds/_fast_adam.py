"""Replicas of ``torch.optim.Adam``'s update that skip ``Optimizer.step``'s per-call overhead.

* ``FlatAdam`` keeps all of the surrogate's parameters, gradients and Adam moments in four flat
  buffers, so one Adam update is one fused kernel call (or seven tensor ops without
  ``fused=True``) on one buffer. The moments stay registered in the ``torch.optim.Adam``
  instance's ``state``, so its ``state_dict`` is unchanged.
* ``adam_step`` repeats ``torch.optim.Adam``'s update for one parameter (θ).

Both replicas call the kernels that ``torch.optim.Adam.step`` calls for the same settings:
``torch._fused_adam_`` with ``fused=True``, else the single-tensor ops. So the results are the
same bit for bit, which ``tests/test_fast.py`` checks against the autograd path.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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


def adam_step(
    optimizer: torch.optim.Optimizer,
    param: torch.Tensor,
    grad: torch.Tensor,
    kernels: str = "torch",
) -> bool:
    """Step a one-parameter ``torch.optim.Adam`` along ``grad`` like ``optimizer.step()``.

    Creates the state the way torch does on the first step. Returns False, and changes
    nothing, when the optimizer's settings are outside ``supported_adam_group``. With
    ``kernels="numba"`` a CPU float32 or float64 parameter is updated by the compiled kernel.
    """
    group = supported_adam_group(optimizer)
    if group is None or len(group["params"]) != 1 or group["params"][0] is not param:
        return False
    state = optimizer.state[param]
    if not state:
        state["step"] = _new_step(group, param.device)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    if kernels == "numba":
        from ._numba_mlp import numba_adam_step

        if numba_adam_step(param, grad, state, group):
            return True
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
