"""Saving and restoring the complete state of a ``ZeroGrads`` optimizer.

``restore_state`` checks every entry of a state before it changes anything, so a state that
is rejected leaves the optimizer as it was.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from ._state_checks import REQUIRED, check_entries, check_same_build, class_name
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
            "batch_size": opt._batch_size,
            "optimizer_class": class_name(opt._optimizer),
            "surrogate_class": class_name(opt._model.network),
            "surrogate_optimizer_class": class_name(opt._model.optimizer),
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

    Every entry is checked first; ``opt`` changes only when all of them pass.

    Raises:
        TypeError: ``state`` is not a dict, or an entry has the wrong type.
        ValueError: ``state`` has another version, is missing an entry, has an entry with the
            wrong shape or value, or comes from an optimizer with another dimension, batch
            size, surrogate architecture or optimizer class.
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
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise ValueError(
            f"`state` is missing the entries {', '.join(repr(k) for k in missing)}; expected "
            "a dict from ZeroGrads.state_dict()"
        )
    check_same_build(opt, state)
    try:
        state = copy.deepcopy(state)
    except Exception as error:
        raise TypeError(
            f"`state` must hold only tensors, numbers, strings and containers of them; "
            f"copying it failed: {error}"
        ) from error
    prepared = check_entries(opt, state)
    _apply(opt, state, prepared)


def _apply(opt: ZeroGrads, state: dict[str, Any], prepared: dict[str, Any]) -> None:
    """Install a checked state.

    The three ``load_state_dict`` calls and ``set_state`` succeeded on copies in
    ``check_entries`` (see the NOTE in ``_state_checks._check_surrogate`` for the one
    exception), and the rest are assignments, so a checked state is installed completely.
    """
    with torch.no_grad():
        opt._theta.copy_(prepared["theta"])
    opt._optimizer.load_state_dict(state["optimizer"])
    opt._model.network.load_state_dict(state["surrogate"])
    opt._model.optimizer.load_state_dict(state["surrogate_optimizer"])
    opt._generator.set_state(prepared["generator"])
    opt._model.input_map.center = prepared["input_center"]
    opt._model.value_scale = prepared["value_scale"]
    opt._model.running_scale.scale = prepared["running_scale"]
    opt._pending = prepared["pending"]
    opt._replay_buffer.replace(prepared["replay"])
    opt._seed = int(state["seed"])
    opt._nfev = int(state["nfev"])
    opt._iteration = int(state["iteration"])
    opt._n_nonfinite = int(state["n_nonfinite"])
    opt._nonfinite_streak = int(state["nonfinite_streak"])
    opt._best_x = prepared["best_x"]
    opt._best_fun = float(state["best_fun"])
