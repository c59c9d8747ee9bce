"""Construction of the torch optimizers that move θ and fit the surrogate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._validation import short_repr

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def make_optimizer(
    name: str,
    factory: OptimizerFactory | None,
    kwargs: dict[str, Any] | None,
    params: list[torch.Tensor],
    lr: float,
) -> torch.optim.Optimizer:
    """Build ``factory(params, lr=lr, **kwargs)``, by default a fused ``torch.optim.Adam``.

    Args:
        name: the argument's name in error messages (``"optimizer"`` or
            ``"surrogate_optimizer"``).
        factory: a torch optimizer class or any callable returning an optimizer.
        kwargs: further keyword arguments; ``lr`` is rejected because it has its own argument.
        params: the tensors to optimize.
        lr: the learning rate.

    Raises:
        ValueError: ``kwargs`` contains ``lr``.
        TypeError: ``factory`` is not callable or does not build a ``torch.optim.Optimizer``.
    """
    kwargs = dict(kwargs or {})
    if "lr" in kwargs:
        lr_name = "lr" if name == "optimizer" else "surrogate_lr"
        raise ValueError(
            f"`{name}_kwargs` must not contain 'lr'; pass `{lr_name}` instead, got "
            f"{short_repr(kwargs)}"
        )
    if factory is None:
        factory = torch.optim.Adam
        # The fused kernel updates every tensor in one pass: the surrogate's Adam step is
        # the largest cost of an iteration at d = 1000. It exists for CPU and CUDA.
        devices = {p.device.type for p in params}
        if "fused" not in kwargs and "foreach" not in kwargs and devices <= {"cpu", "cuda"}:
            kwargs["fused"] = True
    if not callable(factory):
        raise TypeError(f"`{name}` must be a torch optimizer class, got {short_repr(factory)}")
    optimizer = factory(params, lr=lr, **kwargs)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`{name}` must build a torch.optim.Optimizer, got {short_repr(optimizer)}")
    return optimizer
