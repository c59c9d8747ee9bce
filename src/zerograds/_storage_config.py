"""JSON description of a ``minimize`` run, and the fingerprint that a resume must match."""

from __future__ import annotations

import dis
import functools
import hashlib
import inspect
import json
import types
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
    objective's qualified name, a hash of its code (see ``_code_digest``), a hash of x0, the
    seed and the options. A resume must match it. ``seed`` is the seed the caller passed, so
    ``None`` when the run draws its own; a resume then continues with the stored seed.
    Objects that have no JSON form (an optimizer class, a surrogate module) are stored by
    their qualified type name.
    """
    x0_array = np.ascontiguousarray(_to_numpy(x0), dtype=np.float64)
    trajectory = {
        "fun": _qualified_name(fun),
        "fun_code": _code_digest(fun),
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


def _code_digest(fun: Any) -> str | None:
    """Return a SHA-256 hash of what ``fun`` computes, or ``None`` when nothing is known.

    The hash is deterministic across processes (it uses no ``id()`` and no ``hash()`` of
    strings) and covers:

    * functions and lambdas: the bytecode, constants and names of the code object and of the
      code objects nested in it, the default arguments, and the values captured in the
      closure. Captured numbers, strings, bytes, tuples of those, numpy arrays, tensors and
      functions enter the hash with their contents. Other captured values (lists, dicts,
      class instances) enter by their type name only, because they are often state such as
      call counters. A captured variable that the function assigns
      (``nonlocal count; count += 1``) also enters by its type name only. So two closures of
      one factory with different parameters differ, and a function that counts its calls
      keeps its hash.
    * ``functools.partial``: the wrapped function and the arguments, described as above.
    * bound methods: the method's function and the type name of its instance.
    * other callable objects: the type name and the code of the type's ``__call__``. The
      instance's attributes are left out, so two instances of one class match.

    Bytecode changes between Python versions, so a run resumes only on the Python version
    (major.minor) that started it.
    """
    description = _describe_callable(fun, depth=0, seen=set())
    if description is None:
        return None
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# Functions captured in closures, defaults or partial arguments are followed this deep.
_MAX_DEPTH = 4


def _describe_callable(fun: Any, depth: int, seen: set[int]) -> Any:
    """Return a JSON-able description of ``fun``'s behaviour, or ``None`` when it has none.

    ``seen`` contains the ids of the callables on the current path. It only stops cycles, and
    the ids never enter the description.
    """
    if depth > _MAX_DEPTH or id(fun) in seen:
        return {"type": _qualified_name(fun)}
    seen = seen | {id(fun)}
    if isinstance(fun, functools.partial):
        return {
            "partial": _describe_callable(fun.func, depth + 1, seen),
            "args": [_describe_value(v, depth + 1, seen) for v in fun.args],
            "keywords": {k: _describe_value(v, depth + 1, seen) for k, v in fun.keywords.items()},
        }
    if isinstance(fun, types.MethodType):
        return {
            "method": _describe_callable(fun.__func__, depth + 1, seen),
            "self": _qualified_name(type(fun.__self__)),
        }
    code = getattr(fun, "__code__", None)
    if isinstance(code, types.CodeType):
        closure = getattr(fun, "__closure__", None) or ()
        assigned = _assigned_free_variables(code)
        captured = {}
        for name, cell in zip(code.co_freevars, closure, strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                captured[name] = None
                continue
            if name in assigned:
                captured[name] = {"type": _qualified_name(type(value))}
            else:
                captured[name] = _describe_value(value, depth + 1, seen)
        return {
            "code": _describe_code(code),
            "defaults": _describe_value(getattr(fun, "__defaults__", None), depth + 1, seen),
            "kwdefaults": {
                k: _describe_value(v, depth + 1, seen)
                for k, v in sorted((getattr(fun, "__kwdefaults__", None) or {}).items())
            },
            "closure": captured,
        }
    if callable(fun) and not isinstance(fun, type):
        call = inspect.getattr_static(type(fun), "__call__", None)
        if isinstance(call, types.FunctionType):
            return {
                "object": _qualified_name(type(fun)),
                "call": _describe_code(call.__code__),
            }
    return None


def _describe_code(code: types.CodeType) -> Any:
    """Return the bytecode, constants and names of ``code``, nested code objects included."""
    return {
        "bytecode": hashlib.sha256(code.co_code).hexdigest(),
        "consts": [_describe_constant(c) for c in code.co_consts],
        "names": list(code.co_names),
    }


def _describe_constant(value: Any) -> Any:
    if isinstance(value, types.CodeType):
        return _describe_code(value)
    if isinstance(value, tuple):
        return [_describe_constant(v) for v in value]
    if isinstance(value, frozenset):
        # The iteration order of a set of strings changes with the hash seed, so sort.
        return {"frozenset": sorted(json.dumps(_describe_constant(v)) for v in value)}
    return f"{type(value).__name__}:{value!r}"


def _assigned_free_variables(code: types.CodeType) -> set[str]:
    """Return the free variables that ``code`` or a code object nested in it assigns."""
    names: set[str] = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("STORE_DEREF", "DELETE_DEREF"):
            names.add(str(instruction.argval))
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _assigned_free_variables(constant)
    return names


def _describe_value(value: Any, depth: int, seen: set[int]) -> Any:
    """Describe a captured value: its contents when it is a parameter, else its type name."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, tuple):
        return [_describe_value(v, depth, seen) for v in value]
    if isinstance(value, np.ndarray) and value.dtype != object:
        array = np.ascontiguousarray(value)
        return {
            "array": hashlib.sha256(array.tobytes()).hexdigest(),
            "dtype": str(array.dtype),
            "shape": list(array.shape),
        }
    if isinstance(value, torch.Tensor):
        try:
            tensor = value.detach().to("cpu").contiguous().reshape(-1)
            raw = tensor.view(torch.uint8).numpy().tobytes()
        except (RuntimeError, TypeError, NotImplementedError):  # sparse or meta tensors
            return {"type": _qualified_name(type(value))}
        return {
            "tensor": hashlib.sha256(raw).hexdigest(),
            "dtype": str(value.dtype),
            "shape": list(value.shape),
        }
    if isinstance(value, (types.FunctionType, functools.partial, types.MethodType)):
        return _describe_callable(value, depth, seen)
    if isinstance(value, (type, types.BuiltinFunctionType)):
        return {"object": _qualified_name(value)}
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    return {"type": _qualified_name(type(value))}


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
