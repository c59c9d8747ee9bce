"""Checks of a saved ``ZeroGrads`` state, made before any of it is installed."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ._validation import short_repr

if TYPE_CHECKING:
    from .core import ZeroGrads

# Entries that every state of this version has. States written before ``batch_size`` and
# the class names were added still load, and those entries are checked when present.
REQUIRED = (
    "seed",
    "theta",
    "optimizer",
    "surrogate",
    "surrogate_optimizer",
    "generator",
    "input_center",
    "value_scale",
    "running_scale",
    "pending",
    "replay",
    "nfev",
    "iteration",
    "n_nonfinite",
    "nonfinite_streak",
    "best_x",
    "best_fun",
)
_COUNTERS = ("seed", "nfev", "iteration", "n_nonfinite", "nonfinite_streak")


def check_same_build(opt: ZeroGrads, state: dict[str, Any]) -> None:
    """Reject a state saved by an optimizer built with another batch size or other classes."""
    if "batch_size" in state:
        batch_size = _check_count(state, "batch_size")
        if batch_size != opt._batch_size:
            raise ValueError(
                f"`state` was saved with batch_size={batch_size}, but this optimizer has "
                f"batch_size={opt._batch_size}; build it with the same batch_size"
            )
    for key, live, option in (
        ("optimizer_class", opt._optimizer, "optimizer"),
        ("surrogate_class", opt._model.network, "surrogate"),
        ("surrogate_optimizer_class", opt._model.optimizer, "surrogate_optimizer"),
    ):
        if key not in state:
            continue
        saved = state[key]
        if not isinstance(saved, str):
            raise TypeError(f"`{_entry(key)}` must be a class name (str), got {short_repr(saved)}")
        if saved != class_name(live):
            raise ValueError(
                f"`state` was saved with {option} {saved}, but this optimizer uses "
                f"{class_name(live)}; build it with the same `{option}`"
            )


def check_entries(opt: ZeroGrads, state: dict[str, Any]) -> dict[str, Any]:
    """Check every entry of ``state`` and return the values that ``_checkpoint._apply`` installs."""
    dim, rows = opt._dim, 2 * opt._batch_size
    for key in _COUNTERS:
        _check_count(state, key)
    prepared: dict[str, Any] = {
        "theta": _check_tensor(opt, state["theta"], _entry("theta"), (dim,)),
        "input_center": _check_tensor(opt, state["input_center"], _entry("input_center"), (dim,)),
        "best_x": _check_tensor(opt, state["best_x"], _entry("best_x"), (dim,)),
        "value_scale": _check_real(state, "value_scale", "a finite number > 0"),
        "running_scale": _check_real(state, "running_scale", "a finite number >= 0"),
    }
    if not prepared["value_scale"] > 0.0:
        raise ValueError(
            f"`{_entry('value_scale')}` must be a finite number > 0, "
            f"got {short_repr(state['value_scale'])}"
        )
    if prepared["running_scale"] < 0.0:
        raise ValueError(
            f"`{_entry('running_scale')}` must be a finite number >= 0, "
            f"got {short_repr(state['running_scale'])}"
        )
    best_fun = state["best_fun"]
    if isinstance(best_fun, bool) or not isinstance(best_fun, numbers.Real):
        raise TypeError(f"`{_entry('best_fun')}` must be a real number, got {short_repr(best_fun)}")
    if math.isnan(best_fun) or best_fun == -math.inf:
        raise ValueError(
            f"`{_entry('best_fun')}` must be a finite number or inf, got {short_repr(best_fun)}"
        )

    pending = state["pending"]
    if pending is not None:
        if not isinstance(pending, Sequence) or isinstance(pending, str) or len(pending) != 2:
            raise TypeError(
                f"`{_entry('pending')}` must be None or a pair (fit points, queries), "
                f"got {short_repr(pending)}"
            )
        pending = tuple(
            _check_tensor(opt, part, f"{_entry('pending')}[{index}]", (rows, dim))
            for index, part in enumerate(pending)
        )
    prepared["pending"] = pending
    prepared["replay"] = _check_replay(opt, state["replay"])
    prepared["generator"] = _check_generator(opt, state["generator"])
    _check_surrogate(opt, state["surrogate"], state["surrogate_optimizer"])
    _check_optimizer(opt._optimizer, state["optimizer"], "optimizer")
    return prepared


def _check_count(state: dict[str, Any], key: str) -> int:
    """Return the entry ``key`` as an int after checking that it is an integer >= 0."""
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{_entry(key)}` must be an integer >= 0, got {short_repr(value)}")
    if value < 0:
        raise ValueError(f"`{_entry(key)}` must be an integer >= 0, got {short_repr(value)}")
    return int(value)


def _check_real(state: dict[str, Any], key: str, expected: str) -> float:
    """Return the entry ``key`` as a float after checking that it is a finite real number."""
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{_entry(key)}` must be {expected}, got {short_repr(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"`{_entry(key)}` must be {expected}, got {short_repr(value)}")
    return result


def _check_tensor(
    opt: ZeroGrads, value: Any, name: str, shape: tuple[int, ...], *, min_rows: int = 0
) -> torch.Tensor:
    """Return ``value`` on ``opt``'s device and dtype after checking it is a finite float tensor.

    ``shape`` entries of -1 accept any size of at least ``min_rows``.
    """
    expected = f"a finite floating-point tensor of shape {_shape_text(shape)}"
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` must be {expected}, got {short_repr(value)}")
    if value.dim() != len(shape) or any(
        (want >= 0 and got != want) or (want < 0 and got < min_rows)
        for got, want in zip(value.shape, shape, strict=True)
    ):
        raise ValueError(
            f"`{name}` must be {expected}, got shape {tuple(value.shape)}: {short_repr(value)}"
        )
    if value.device.type == "meta" or not bool(torch.isfinite(value).all()):
        raise ValueError(f"`{name}` must be {expected}, got {short_repr(value)}")
    return value.detach().to(opt._device, opt._dtype)


def _check_replay(opt: ZeroGrads, replay: Any) -> list[tuple[torch.Tensor, ...]]:
    name = _entry("replay")
    if not isinstance(replay, Sequence) or isinstance(replay, str):
        raise TypeError(
            f"`{name}` must be a list of (fit points, values, θ) batches, got {short_repr(replay)}"
        )
    batches = []
    dim = opt._dim
    for index, batch in enumerate(replay):
        where = f"{name}[{index}]"
        if not isinstance(batch, Sequence) or isinstance(batch, str) or len(batch) != 3:
            raise TypeError(
                f"`{where}` must be a triple (fit points, values, θ), got {short_repr(batch)}"
            )
        points = _check_tensor(opt, batch[0], f"{where}[0]", (-1, dim), min_rows=1)
        values = _check_tensor(opt, batch[1], f"{where}[1]", (points.shape[0],))
        anchor = _check_tensor(opt, batch[2], f"{where}[2]", (dim,))
        batches.append((points, values, anchor))
    return batches


def _check_generator(opt: ZeroGrads, value: Any) -> torch.Tensor:
    name = _entry("generator")
    live = opt._generator.get_state()
    expected = f"a torch.ByteTensor (dtype uint8) of shape {tuple(live.shape)}"
    if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8:
        raise TypeError(f"`{name}` must be {expected}, got {short_repr(value)}")
    if value.shape != live.shape:
        raise ValueError(f"`{name}` must be {expected}, got shape {tuple(value.shape)}")
    state = value.detach().cpu().contiguous()
    trial = torch.Generator(device=opt._device)
    try:
        trial.set_state(state)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"`{name}` is not a valid RNG state: {error}") from error
    return state


def _check_surrogate(opt: ZeroGrads, weights: Any, optimizer_state: Any) -> None:
    """Check the surrogate's weights and optimizer state by loading them into copies."""
    _check_surrogate_weights(opt._model.network, weights)

    try:
        network_copy, optimizer_copy = copy.deepcopy((opt._model.network, opt._model.optimizer))
    except Exception:
        # NOTE: a custom module that cannot be deep-copied gets only the key, shape and layout
        # checks, so its own load_state_dict may still fail while the state is applied.
        _check_optimizer_layout(opt._model.optimizer, optimizer_state, "surrogate_optimizer")
        return
    try:
        network_copy.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(
            f"`{_entry('surrogate')}` does not load into this optimizer's surrogate: {error}"
        ) from error
    _check_optimizer(optimizer_copy, optimizer_state, "surrogate_optimizer", trial_ready=True)


def _check_surrogate_weights(network: torch.nn.Module, weights: Any) -> None:
    """Check that ``weights`` has the keys and shapes of ``network``'s state_dict."""
    name = _entry("surrogate")
    if not isinstance(weights, Mapping) or not all(isinstance(k, str) for k in weights):
        raise TypeError(
            f"`{name}` must be the surrogate's state_dict (a dict of tensors), "
            f"got {short_repr(weights)}"
        )

    live = network.state_dict()
    missing = [key for key in live if key not in weights]
    unexpected = [key for key in weights if key not in live]
    if missing or unexpected:
        raise ValueError(
            f"`{name}` does not fit this optimizer's surrogate ({class_name(network)}): "
            f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}. The state "
            "comes from another surrogate architecture"
        )

    for key, tensor in live.items():
        saved = weights[key]
        if not isinstance(saved, torch.Tensor):
            raise TypeError(f"`{name}[{key!r}]` must be a tensor, got {short_repr(saved)}")
        if saved.shape != tensor.shape:
            raise ValueError(
                f"`{name}[{key!r}]` has shape {tuple(saved.shape)}, but this optimizer's "
                f"surrogate ({class_name(network)}) expects {tuple(tensor.shape)}. The state "
                "comes from another surrogate architecture"
            )
        if saved.is_floating_point() and not bool(torch.isfinite(saved).all()):
            raise ValueError(f"`{name}[{key!r}]` must be finite, got {short_repr(saved)}")


def _check_optimizer(
    optimizer: torch.optim.Optimizer, saved: Any, key: str, *, trial_ready: bool = False
) -> None:
    """Check an optimizer's saved state by loading it into a copy of ``optimizer``.

    With ``trial_ready`` the caller already passes a copy, which this call may change.
    """
    _check_optimizer_layout(optimizer, saved, key)
    name = _entry(key)
    trial = optimizer if trial_ready else copy.deepcopy(optimizer)
    try:
        trial.load_state_dict(saved)
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"`{name}` does not load into this optimizer: {error}") from error
    for param, entries in trial.state.items():
        for entry, value in entries.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            try:
                fits = torch.broadcast_shapes(value.shape, param.shape) == param.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(
                    f"`{name}` contains {entry!r} of shape {tuple(value.shape)} for a parameter of "
                    f"shape {tuple(param.shape)}; the state comes from another problem"
                )


def _check_optimizer_layout(optimizer: torch.optim.Optimizer, saved: Any, key: str) -> None:
    """Check the structure of an optimizer's ``state_dict``: groups, parameter counts, lr."""
    name = _entry(key)
    expected = "an optimizer state_dict with 'state' and 'param_groups'"
    if not isinstance(saved, Mapping) or "state" not in saved or "param_groups" not in saved:
        raise ValueError(f"`{name}` must be {expected}, got {short_repr(saved)}")
    groups = saved["param_groups"]
    if not isinstance(saved["state"], Mapping) or not isinstance(groups, Sequence):
        raise TypeError(f"`{name}` must be {expected}, got {short_repr(saved)}")
    live_sizes = [len(group["params"]) for group in optimizer.param_groups]
    sizes = []
    for index, group in enumerate(groups):
        if not isinstance(group, Mapping) or not isinstance(group.get("params"), Sequence):
            raise TypeError(
                f"`{name}['param_groups'][{index}]` must be a dict with a 'params' list, "
                f"got {short_repr(group)}"
            )
        lr = group.get("lr", 0.0)
        where = f"{name}['param_groups'][{index}]['lr']"
        if not isinstance(lr, torch.Tensor):  # torch also accepts a tensor learning rate
            if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
                raise TypeError(f"`{where}` must be a finite number >= 0, got {short_repr(lr)}")
            if not (math.isfinite(lr) and lr >= 0.0):
                raise ValueError(f"`{where}` must be a finite number >= 0, got {short_repr(lr)}")
        sizes.append(len(group["params"]))
    if sizes != live_sizes:
        raise ValueError(
            f"`{name}` has parameter groups of sizes {sizes}, but this optimizer has "
            f"{live_sizes}; the state comes from another problem or optimizer"
        )


# ---------------------------------------------------------------------- apply


def _entry(key: str) -> str:
    """Return how messages name the entry ``key``: ``state['key']``."""
    return f"state[{key!r}]"


def _shape_text(shape: tuple[int, ...]) -> str:
    parts = ["n" if size < 0 else str(size) for size in shape]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


def class_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"
