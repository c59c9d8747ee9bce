"""JSON description of a ``minimize`` run, and the fingerprint that a resume must match."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch


def describe_run(
    fun: Any,
    x0: Any,
    seed: int | None,
    build: dict[str, Any],
    vectorized: bool,
    eval_every: int,
    policy: Any,
) -> dict[str, Any]:
    """Return the JSON config of a ``minimize`` run.

    The ``"trajectory"`` entry holds everything that decides which points are evaluated: the
    objective's qualified name, a hash of x0, the seed and the options. A resume must match it.
    Objects that have no JSON form (an optimizer class, a surrogate module) are stored by
    their qualified type name.
    """
    x0_array = np.ascontiguousarray(_to_numpy(x0), dtype=np.float64)
    trajectory = {
        "fun": _qualified_name(fun),
        "dim": int(x0_array.size),
        "x0_sha256": hashlib.sha256(x0_array.tobytes()).hexdigest(),
        "seed": seed,
        "vectorized": vectorized,
        "eval_every": eval_every,
        "on_error": policy.on_error,
        "on_nonfinite": policy.on_nonfinite,
        "penalty": policy.penalty,
        **{key: _jsonable(value) for key, value in sorted(build.items())},
    }
    return {"trajectory": trajectory, "timeout": policy.timeout}


def _fingerprint(config: dict[str, Any]) -> str:
    trajectory = json.dumps(config.get("trajectory", config), sort_keys=True)
    return hashlib.sha256(trajectory.encode()).hexdigest()


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    old_t, new_t = old.get("trajectory", old), new.get("trajectory", new)
    keys = sorted(set(old_t) | set(new_t))
    changed = [
        f"{k}: {old_t.get(k)!r} -> {new_t.get(k)!r}" for k in keys if old_t.get(k) != new_t.get(k)
    ]
    return "; ".join(changed) or "(no difference in the stored options)"


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _qualified_name(obj: Any) -> str:
    target = (
        obj
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
        else type(obj)
    )
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = np.ascontiguousarray(_to_numpy(value))
        return {"sha256": hashlib.sha256(array.tobytes()).hexdigest(), "shape": list(array.shape)}
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, torch.dtype):
        return str(value)
    return {"type": _qualified_name(value)}
