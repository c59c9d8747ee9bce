"""Saving and restoring the complete state of a ``ZeroGrads`` optimizer."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from ._validation import short_repr

if TYPE_CHECKING:
    from .core import ZeroGrads

STATE_VERSION = 2


def collect_state(opt: ZeroGrads) -> dict[str, Any]:
    """Return a deep copy of everything ``opt`` needs to continue bit-identically."""
    return copy.deepcopy(
        {
            "version": STATE_VERSION,
            "dim": opt._dim,
            "seed": opt._seed,
            "theta": opt._theta.detach(),
            "optimizer": opt._optimizer.state_dict(),
            "surrogate": opt._model.network.state_dict(),
            "surrogate_optimizer": opt._model.optimizer.state_dict(),
            "generator": opt._generator.get_state(),
            "input_center": opt._model.input_map.center,
            "value_scale": opt._model.value_scale,
            "running_scale": opt._model.running_scale.scale,
            "pending": opt._pending,
            "replay": list(opt._replay_buffer),
            "nfev": opt._nfev,
            "iteration": opt._iteration,
            "n_nonfinite": opt._n_nonfinite,
            "nonfinite_streak": opt._nonfinite_streak,
            "best_x": opt._best_x,
            "best_fun": opt._best_fun,
        }
    )


def restore_state(opt: ZeroGrads, state: dict[str, Any]) -> None:
    """Load a state from ``collect_state`` into ``opt``, which was built the same way.

    Raises:
        TypeError: ``state`` is not a dict.
        ValueError: ``state`` has another version or belongs to a problem of another dimension.
    """
    if not isinstance(state, dict):
        raise TypeError(
            f"`state` must be a dict from ZeroGrads.state_dict(), got {type(state).__name__}"
        )
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"`state` must come from ZeroGrads.state_dict() with version {STATE_VERSION}, "
            f"got version {short_repr(state.get('version'))}"
        )
    if state.get("dim") != opt._dim:
        raise ValueError(
            f"`state` is for d={state.get('dim')}, but this optimizer has d={opt._dim}"
        )
    state = copy.deepcopy(state)
    with torch.no_grad():
        opt._theta.copy_(state["theta"])
    opt._optimizer.load_state_dict(state["optimizer"])
    opt._model.network.load_state_dict(state["surrogate"])
    opt._model.optimizer.load_state_dict(state["surrogate_optimizer"])
    opt._generator.set_state(state["generator"])
    opt._model.input_map.center = state["input_center"].to(opt._device, opt._dtype)
    opt._model.value_scale = float(state["value_scale"])
    opt._model.running_scale.scale = float(state["running_scale"])
    pending = state["pending"]
    opt._pending = None if pending is None else (pending[0], pending[1])
    opt._replay_buffer.replace(
        tuple(t.to(opt._device, opt._dtype) for t in batch) for batch in state["replay"]
    )
    opt._seed = int(state["seed"])
    opt._nfev = int(state["nfev"])
    opt._iteration = int(state["iteration"])
    opt._n_nonfinite = int(state["n_nonfinite"])
    opt._nonfinite_streak = int(state["nonfinite_streak"])
    opt._best_x = state["best_x"]
    opt._best_fun = float(state["best_fun"])
