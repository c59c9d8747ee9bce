"""Checks of ``ZeroGrads``' constructor arguments that need torch: device, seed, bounds, modules."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validation import finite_mask, short_repr

# Largest accepted seed: seeds are stored as signed 64-bit integers (SQLite's INTEGER).
MAX_SEED = 2**63 - 1
# Largest number of coordinates in one batch of sample points, 2 * batch_size * d.
MAX_BATCH_ELEMENTS = 2**31
# Bound on the distance of a sample point from θ, in units of σ·(1 + smoothing). An estimate:
# the Box-Muller transform of 53-bit uniform numbers gives no normal draw beyond about 8.6.
MAX_NORMAL_DRAW = 10.0


def check_device(device: Any) -> torch.device:
    """Return ``device`` as a ``torch.device`` after checking that tensors can live there."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(
            f"`device` must be a torch device such as 'cpu' or 'cuda', got {short_repr(device)} "
            f"({error})"
        ) from None
    if parsed.type == "meta":
        raise ValueError(
            f"`device` must hold data, got {short_repr(device)}; 'meta' tensors have no values"
        )
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` {short_repr(device)} needs CUDA, and CUDA is not available")
    try:
        torch.Generator(device=parsed)
        torch.empty(0, device=parsed)
    except (RuntimeError, AssertionError) as error:
        raise ValueError(f"`device` {short_repr(device)} is not available: {error}") from None
    return parsed


def first_infinite_bound(bounds: tuple[np.ndarray, np.ndarray], dtype: torch.dtype) -> str | None:
    """Describe the first bound that is not finite in ``dtype``, or return None."""
    for label, array in zip(("lower", "upper"), bounds, strict=True):
        finite = finite_mask(array, dtype)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            described = f"{label}[{index}]={float(array[index])!r}"
            if math.isfinite(array[index]):
                described += f", beyond the range of {dtype}"
            return described
    return None


def generator_seed(seed: int) -> int:
    """Return the seed of the torch generators for the user's ``seed``.

    Seeds below 2**32 are used as they are. Larger ones are hashed to 64 bits, so that their
    high bits reach the low 32 bits that torch's CPU generator (a Mersenne Twister) keeps.
    """
    if seed < 2**32:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0])


def check_surrogate_module(
    network: nn.Module, dim: int, device: torch.device, dtype: torch.dtype
) -> None:
    """Raise ``ValueError`` unless ``network`` maps a `(2, d)` input to `(2,)` or `(2, 1)`.

    The probe leaves the module's parameters and buffers and every random generator as they
    were, so seeded runs do not change.
    """
    probe = torch.zeros(2, dim, device=device, dtype=dtype)
    saved = {name: value.detach().clone() for name, value in network.state_dict().items()}
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            output = network(probe)
    except Exception as error:
        raise ValueError(
            f"`surrogate` must map (n, {dim}) inputs to (n,) outputs, but calling it on a "
            f"(2, {dim}) {dtype} input raised {type(error).__name__}: {error}"
        ) from error
    finally:
        with torch.no_grad():
            for name, value in network.state_dict().items():
                if name in saved and value.shape == saved[name].shape:
                    value.copy_(saved[name])
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    if shape not in ((2,), (2, 1)):
        received = f"shape {shape}" if shape is not None else short_repr(output)
        raise ValueError(
            f"`surrogate` must map (n, {dim}) inputs to (n,) outputs (or (n, 1)), got "
            f"{received} for a (2, {dim}) input"
        )


def check_step_needs_no_closure(name: str, optimizer: torch.optim.Optimizer) -> None:
    """Raise ``ValueError`` when ``optimizer.step`` requires an argument (a closure)."""
    try:
        parameters = inspect.signature(optimizer.step).parameters.values()
    except (TypeError, ValueError):  # no signature to read: leave it to the first step
        return
    required = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        raise ValueError(
            f"`{name}` must be an optimizer whose step() takes no arguments; step(closure) "
            f"optimizers such as torch.optim.LBFGS are not supported, got "
            f"{type(optimizer).__name__} whose step() requires {', '.join(required)}"
        )


KERNELS = ("torch", "numba")


def check_kernels(
    kernels: Any,
    network: nn.Module,
    network_optimizer: torch.optim.Optimizer,
    device: torch.device,
    dtype: torch.dtype,
) -> str:
    """Return ``kernels`` after checking that its implementation can run this configuration."""
    from ._fast import FastMLP
    from ._validation import check_choice

    check_choice("kernels", kernels, KERNELS)
    if kernels == "torch":
        return kernels
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        raise ValueError(
            "`kernels`='numba' runs on the CPU in float32 or float64, got "
            f"device={str(device)!r}, dtype={dtype}; use kernels='torch'"
        )
    if not FastMLP.supports(network, network_optimizer):
        raise ValueError(
            "`kernels`='numba' needs the built-in MLP surrogate (surrogate='mlp', 'reference', "
            "'highdim' or 'scalable') with a plain torch.optim.Adam as `surrogate_optimizer` "
            "(one parameter group, float lr and betas, and none of weight_decay, amsgrad, "
            "maximize, foreach, capturable or differentiable), got "
            f"{type(network).__name__} with {type(network_optimizer).__name__}; use "
            "kernels='torch'"
        )
    # Raises ImportError with install instructions when numba is missing.
    from . import _numba_mlp  # noqa: F401

    return kernels
