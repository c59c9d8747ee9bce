"""Argument checks shared by the public entry points.

Every check raises ``ValueError`` or ``TypeError`` with one message shape: the argument's
name, the value received and what is expected.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import torch


def short_repr(value: Any, limit: int = 80) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters for error messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def check_positive_float(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float after checking that it is a number > 0.

    The number must be finite unless ``allow_inf``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {short_repr(value)}")
    result = _to_float(value)
    if allow_inf and result == math.inf:
        return result
    if not np.isfinite(result) or result <= 0.0:
        expected = "a number > 0 or math.inf" if allow_inf else "a finite number > 0"
        raise ValueError(f"`{name}` must be {expected}, got {short_repr(value)}")
    return result


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking that it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {short_repr(value)}")
    result = _to_float(value)
    if not np.isfinite(result) or result < 0.0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {short_repr(value)}")
    return result


def _to_float(value: Any) -> float:
    """Return ``float(value)``, or ±inf for an integer too large for a float."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int after checking that it is an integer >= ``minimum``.

    With ``maximum`` the integer must also be <= ``maximum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {short_repr(value)}")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {short_repr(value)}")
    if maximum is not None and int(value) > maximum:
        raise ValueError(f"`{name}` must be an integer <= {maximum}, got {short_repr(value)}")
    return int(value)


@functools.cache
def _largest_value(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).max)


def finite_mask(array: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Return which entries of the float64 ``array`` stay finite when cast to ``dtype``.

    NaN, ±inf and numbers beyond the range of ``dtype`` (1e39 for float32) are False.
    """
    array = np.asarray(array, dtype=np.float64)
    finite = np.abs(array) <= _largest_value(dtype)  # False for NaN and ±inf
    if finite.all():  # the usual case, checked once per batch passed to `tell`
        return finite
    # Numbers slightly above the largest value of ``dtype`` can still round down to it, so
    # the cast itself decides for the few entries that are finite but above it.
    doubtful = ~finite & np.isfinite(array)
    if doubtful.any():
        cast = torch.from_numpy(array[doubtful]).to(dtype)
        finite[doubtful] = torch.isfinite(cast).numpy()
    return finite


def is_finite_in(value: float, dtype: torch.dtype) -> bool:
    """Return whether the number ``value`` stays finite when cast to ``dtype``."""
    if abs(value) <= torch.finfo(dtype).max:  # False for NaN
        return True
    if not math.isfinite(value):
        return False
    return bool(torch.isfinite(torch.tensor(value, dtype=torch.float64).to(dtype)))


def check_finite_in_dtype(name: str, array: np.ndarray, dtype: torch.dtype) -> None:
    """Raise ``ValueError`` when an entry of ``array`` is beyond the range of ``dtype``.

    ``array`` must already be finite in float64; ``x0`` is checked this way, because the
    cast to the working dtype would turn such an entry into ±inf.
    """
    finite = finite_mask(array.reshape(-1), dtype)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        largest = torch.finfo(dtype).max
        raise ValueError(
            f"`{name}` must be at most {largest:.4g} in absolute value, the largest {dtype} "
            f"value, got {float(array.reshape(-1)[bad])!r} at index {bad}"
        )


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` after checking that it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {expected}, got {short_repr(value)}")
    return value


def to_float_array(name: str, value: Any) -> np.ndarray:
    """Convert a list, numpy array or tensor to a float64 numpy array.

    Raises:
        TypeError: ``value`` is not array-like or contains non-numbers.
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"`{name}` must be real, got a complex tensor")
        return value.detach().to("cpu", torch.float64).numpy()
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be array-like of numbers, got {short_repr(value)}")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(
            f"`{name}` must be array-like of numbers, got {short_repr(value)}"
        ) from error
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"`{name}` must be array-like of real numbers, got dtype {array.dtype} "
            f"from {short_repr(value)}"
        )
    return array.astype(np.float64)


def check_x0(x0: Any) -> np.ndarray:
    """Return ``x0`` as a finite 1-D float64 array of length >= 1."""
    array = to_float_array("x0", x0)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`x0` must be a non-empty 1-D array, got shape {tuple(array.shape)}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"`x0` must be finite, got {array[bad]} at index {bad}")
    return array


def check_bounds(bounds: Any, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse ``bounds`` into ``(lower, upper)`` arrays of shape `(dim,)`.

    Accepted forms: ``None``; a pair ``(lower, upper)`` where each is a number or an array of
    length ``dim``; an array of shape `(dim, 2)` with one ``(lower, upper)`` row per
    coordinate. At ``dim == 2`` a 2x2 input is read as the pair ``(lower, upper)``.
    """
    if bounds is None:
        return None
    if isinstance(bounds, (str, bytes, Mapping)) or not hasattr(bounds, "__len__"):
        raise TypeError(f"`bounds` must be a pair (lower, upper), got {short_repr(bounds)}")
    if len(bounds) == 2:
        lower = _bound_side("lower", bounds[0], dim)
        upper = _bound_side("upper", bounds[1], dim)
    else:
        table = to_float_array("bounds", bounds)
        if table.shape != (dim, 2):
            raise ValueError(
                f"`bounds` must be (lower, upper) or an array of shape ({dim}, 2), "
                f"got shape {tuple(table.shape)}"
            )
        lower, upper = table[:, 0].copy(), table[:, 1].copy()
    for label, array in (("lower", lower), ("upper", upper)):
        if np.any(np.isnan(array)):
            raise ValueError(f"`bounds` {label} must not contain NaN, got {short_repr(array)}")
    if np.any(lower > upper):
        bad = int(np.flatnonzero(lower > upper)[0])
        raise ValueError(
            f"`bounds` lower must be <= upper, got lower={lower[bad]} > upper={upper[bad]} "
            f"at index {bad}"
        )
    return lower, upper


def _bound_side(label: str, value: Any, dim: int) -> np.ndarray:
    array = to_float_array(f"bounds ({label})", value)
    if array.ndim == 0:
        return np.full(dim, float(array))
    if array.shape != (dim,):
        raise ValueError(
            f"`bounds` {label} must be a number or have shape ({dim},), "
            f"got shape {tuple(array.shape)}"
        )
    return array.copy()


def check_inside_bounds(x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Raise ``ValueError`` when ``x0`` lies outside ``bounds``."""
    if bounds is None:
        return
    lower, upper = bounds
    outside = (x0 < lower) | (x0 > upper)
    if np.any(outside):
        bad = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"`x0` must lie inside `bounds`, got x0[{bad}]={x0[bad]} outside "
            f"[{lower[bad]}, {upper[bad]}]"
        )


def check_tell_points(points: Any, queries: torch.Tensor, sigma: float) -> None:
    """Raise ``ValueError`` when the ``points`` passed to ``tell`` are not the asked ``queries``.

    Points within float rounding of the queries (``rtol=1e-5``, ``atol=1e-6 * sigma``) pass.
    """
    if isinstance(points, torch.Tensor):
        told = points.detach().to(queries.device, queries.dtype)
    else:
        told = torch.as_tensor(to_float_array("points", points), device=queries.device).to(
            queries.dtype
        )
    if told.shape != queries.shape:
        raise ValueError(
            f"`points` must be the {tuple(queries.shape)} array returned by ask(), "
            f"got shape {tuple(told.shape)}"
        )
    # torch.equal is the cheaper check and passes for the tensor that ask() returned.
    if not torch.equal(told, queries) and not torch.allclose(
        told, queries, rtol=1e-5, atol=1e-6 * sigma
    ):
        difference = float((told - queries).abs().max())
        raise ValueError(
            "`points` must be the points returned by the last ask(), got points that "
            f"differ by up to {difference:.3g}; tell() needs the values at exactly those "
            "points"
        )


def _each_must_be(name: str) -> str:
    """Return the start of an error message about one value from ``fun`` or ``tell``."""
    return "`fun` must return" if name == "fun" else f"each entry of `{name}` must be"


def _all_must_be(name: str) -> str:
    """Return the start of an error message about a batch from ``fun`` or ``tell``."""
    return "`fun` must return" if name == "fun" else f"`{name}` must contain"


def to_value(value: Any, name: str = "fun") -> float:
    """Convert one objective value to a float.

    Accepts Python and numpy numbers and tensors or arrays holding exactly one element.
    NaN and infinities pass through; the caller decides what to do with them.
    """
    expected = _each_must_be(name)
    if isinstance(value, bool) or isinstance(value, (np.bool_,)):
        raise TypeError(f"{expected} a real number, got {short_repr(value)}")
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            # An int (or Fraction) beyond the float range, such as 10**400.
            raise ValueError(
                f"{expected} a real number within the float range (about ±1.8e+308), got "
                f"{short_repr(value)}"
            ) from None
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if (
            value.dtype in (torch.bool, np.bool_)
            or (isinstance(value, torch.Tensor) and value.is_complex())
            or (isinstance(value, np.ndarray) and not np.issubdtype(value.dtype, np.number))
        ):
            raise TypeError(f"{expected} a real number, got {short_repr(value)}")
        if isinstance(value, np.ndarray) and np.iscomplexobj(value):
            raise TypeError(f"{expected} a real number, got {short_repr(value)}")
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        if size != 1:
            raise ValueError(f"{expected} one number, got an array of shape {tuple(value.shape)}")
        return float(value.reshape(-1)[0])
    raise TypeError(f"{expected} a real number, got {short_repr(value)}")


def to_values(values: Any, count: int, name: str = "values") -> torch.Tensor:
    """Convert a batch of objective values to a float64 tensor of shape `(count,)`."""
    expected = _all_must_be(name)
    if isinstance(values, torch.Tensor):  # first: the usual case on the hot path
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"{expected} real numbers, got dtype {values.dtype}")
        if values.is_meta:
            raise TypeError(f"{expected} real numbers, got a tensor on the 'meta' device")
        dim = values.dim()
        if values.numel() != count or dim > 2 or (dim == 2 and 1 not in values.shape):
            raise ValueError(f"{expected} {count} numbers, got shape {tuple(values.shape)}")
        return values.detach().to("cpu", torch.float64).reshape(-1)
    if isinstance(values, (Mapping, AbstractSet)):
        # Their iteration yields keys, or an order that is not the points' order.
        kind = "a mapping" if isinstance(values, Mapping) else "a set"
        start = "`fun` must return" if name == "fun" else f"`{name}` must be"
        raise TypeError(
            f"{start} a sequence or array of {count} real numbers in the order of the points, "
            f"got {kind}: {short_repr(values)}"
        )
    try:
        raw = np.asarray(values)
    except (ValueError, TypeError) as error:
        message = f"{_all_must_be(name)} {count} real numbers, got {short_repr(values)}"
        raise TypeError(message) from error
    if raw.dtype == object:
        return torch.tensor(
            [to_value(v, name) for v in _as_list(values, count, name)], dtype=torch.float64
        )
    if raw.dtype == bool or not np.issubdtype(raw.dtype, np.number) or np.iscomplexobj(raw):
        raise TypeError(f"{expected} real numbers, got dtype {raw.dtype}")
    if raw.size != count or raw.ndim > 2 or (raw.ndim == 2 and 1 not in raw.shape):
        raise ValueError(f"{expected} {count} numbers, got shape {tuple(raw.shape)}")
    return torch.from_numpy(raw.astype(np.float64).reshape(-1))


def _as_list(values: Any, count: int, name: str) -> list[Any]:
    try:
        items = list(values)
    except TypeError as error:
        message = f"{_all_must_be(name)} {count} real numbers, got {short_repr(values)}"
        raise TypeError(message) from error
    if len(items) != count:
        raise ValueError(f"{_all_must_be(name)} {count} numbers, got {len(items)}")
    return items
