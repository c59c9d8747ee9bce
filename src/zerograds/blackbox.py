"""``BlackBox``: a non-differentiable function as a differentiable ``torch.nn.Module``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ._evaluation import ArrayConverter, Evaluator
from ._validation import check_choice, check_int, short_repr
from .core import ZeroGrads


class _SurrogateGradient(torch.autograd.Function):
    """Returns the black box's value forward and the surrogate's gradient backward."""

    @staticmethod
    def forward(ctx: Any, theta: torch.Tensor, value: torch.Tensor, gradient: torch.Tensor) -> Any:
        ctx.save_for_backward(gradient)
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Any:
        (gradient,) = ctx.saved_tensors
        return grad_output * gradient, None, None


class BlackBox(nn.Module):
    """Wraps ``fun`` so that autograd passes the ZeroGrads surrogate's gradient through it.

    Each ``forward(theta)`` samples 2B points around θ, evaluates ``fun`` there, fits the
    surrogate and returns ``fun(theta)`` as a scalar tensor; ``backward`` passes ∇_θ h_φ(θ).
    The parameters themselves are moved by whatever torch optimizer the user runs, so
    parametrizations upstream (θ = g(ψ)) and LR schedulers work unchanged.

    Args:
        fun: the black box; takes a `(d,)` tensor (or `(n, d)` with ``vectorized=True``) and
            returns a number (or `(n,)` numbers).
        dim: number of parameters d.
        sigma: sampling standard deviation σ. Default 1.0.
        batch_size: perturbations B per forward; 2B evaluations plus one at θ. Default 4.
        seed: seed of all random draws.
        vectorized: call ``fun`` once per batch.
        value: ``"exact"`` returns ``fun(theta)`` (one more evaluation per forward);
            ``"mean"`` returns the mean of the batch's values, an estimate of the smoothed
            objective at θ that costs nothing extra.
        **options: further options of ``ZeroGrads`` (``surrogate``, ``smoothing``, ...); the
            θ optimizer options do not apply because the caller moves θ.

    Example:
        >>> import torch, zerograds as zg
        >>> box = zg.BlackBox(lambda x: float((x.round() - 2.0).pow(2).sum()), dim=3, seed=0)
        >>> theta = torch.zeros(3, requires_grad=True)
        >>> loss = box(theta)
        >>> loss.backward()
        >>> theta.grad.shape
        torch.Size([3])
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        dim: int,
        *,
        sigma: float = 1.0,
        batch_size: int = 4,
        seed: int | None = None,
        vectorized: bool = False,
        value: str = "exact",
        **options: Any,
    ) -> None:
        super().__init__()
        dim = check_int("dim", dim, 1)
        self.value_mode = check_choice("value", value, ("exact", "mean"))
        for name in ("optimizer", "optimizer_kwargs", "lr", "theta_steps", "bounds"):
            if name in options:
                raise ValueError(
                    f"`{name}` does not apply to BlackBox because the caller's optimizer moves "
                    f"θ, got {name}={short_repr(options[name])}"
                )
        self.core = ZeroGrads(
            torch.zeros(dim), sigma=sigma, batch_size=batch_size, seed=seed, **options
        )
        self.core._external_theta = True
        self.dim = dim
        self._evaluate = Evaluator(fun, ArrayConverter(torch.zeros(dim)), vectorized)

    @property
    def nfev(self) -> int:
        """Number of calls of ``fun`` so far."""
        return self._evaluate.calls

    def get_extra_state(self) -> dict[str, Any]:
        """Return the core's ``state_dict()`` and the call count for ``Module.state_dict()``.

        The ZeroGrads core has no ``nn.Parameter``, so without this hook ``state_dict()``
        would be empty. With it, ``box.state_dict()`` / ``load_state_dict()`` (and the usual
        ``torch.save`` of a model that contains a BlackBox) carry the surrogate, the optimizer
        states and the RNG state, and a loaded box continues bit-identically. The state loads
        with ``torch.load(..., weights_only=True)``.
        """
        return {"core": self.core.state_dict(), "calls": self._evaluate.calls}

    def set_extra_state(self, state: Any) -> None:
        """Restore a state from ``get_extra_state`` of a BlackBox built the same way.

        Raises:
            TypeError, ValueError: ``state`` is malformed or comes from a BlackBox with another
                ``dim``, batch size or surrogate; the box is left unchanged.
        """
        expected = "a dict with 'core' and 'calls' from BlackBox.state_dict()"
        if not isinstance(state, dict) or "core" not in state or "calls" not in state:
            raise TypeError(
                f"the BlackBox's `_extra_state` must be {expected}, got {short_repr(state)}"
            )
        calls = state["calls"]
        message = (
            f"the BlackBox's `_extra_state['calls']` must be an integer >= 0, got "
            f"{short_repr(calls)}"
        )
        if isinstance(calls, bool) or not isinstance(calls, int):
            raise TypeError(message)
        if calls < 0:
            raise ValueError(message)
        self.core.load_state_dict(state["core"])
        self._evaluate.calls = calls

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        if not isinstance(theta, torch.Tensor):
            raise TypeError(f"`theta` must be a torch.Tensor, got {short_repr(theta)}")
        if not theta.dtype.is_floating_point:
            raise TypeError(f"`theta` must be a floating tensor, got dtype {theta.dtype}")
        if theta.shape != (self.dim,):
            raise ValueError(f"`theta` must have shape ({self.dim},), got {tuple(theta.shape)}")
        if not bool(torch.isfinite(theta).all()):
            raise ValueError(f"`theta` must be finite, got {short_repr(theta)}")
        self._evaluate.converter.torch_dtype = theta.dtype
        self._evaluate.converter.device = theta.device

        # A batch left pending by a forward whose ``fun`` raised was drawn around that call's
        # θ, so it is dropped. The gradient is reset so that a batch without any finite value
        # passes zero, not the previous forward's gradient.
        self.core._pending = None
        self.core._last_gradient = None
        self.core._set_theta(theta)
        points = self.core.ask()
        values = self._evaluate(points)
        self.core.tell(points, values)
        gradient = self.core._last_gradient
        if gradient is None:  # no finite value in this batch: no information about the slope
            gradient = torch.zeros(self.dim)
        if self.value_mode == "exact":
            result = self._evaluate.evaluate_one(theta.detach())
        else:
            finite = values[values.isfinite()]
            result = float(finite.mean()) if finite.numel() else float("nan")

        value = torch.tensor(result, dtype=theta.dtype, device=theta.device)
        gradient = gradient.to(theta.device, theta.dtype)
        return _SurrogateGradient.apply(theta, value, gradient)
