"""Calling the user's objective on the optimizer's points.

``Evaluator`` converts the optimizer's `(n, d)` tensors into the array type the user works with
(numpy arrays, or tensors of x0's dtype and device), calls the objective and checks what comes
back. An exception raised by the objective propagates unchanged, with the point that caused it
and the values already computed for the batch attached (see ``attach_point``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._validation import short_repr, to_value, to_values


def attach_point(
    error: BaseException, point: np.ndarray | torch.Tensor, done: list[tuple[Any, float]]
) -> None:
    """Attach the failing point and the batch's finished evaluations to ``error``.

    The point is stored as ``error.zerograds_point`` and mentioned in a note on the traceback;
    the ``(point, value)`` pairs computed before the failure are ``error.zerograds_evaluated``.
    """
    try:
        error.zerograds_point = point  # type: ignore[attr-defined]
        error.zerograds_evaluated = list(done)  # type: ignore[attr-defined]
    except AttributeError:  # exceptions with __slots__ cannot take attributes
        pass
    error.add_note(f"zerograds: the objective raised at x={short_repr(point, 200)}")


class ArrayConverter:
    """Converts optimizer tensors to and from the type of the user's x0."""

    def __init__(self, x0: Any) -> None:
        self.kind = (
            "torch"
            if isinstance(x0, torch.Tensor)
            else ("list" if isinstance(x0, (list, tuple)) else "numpy")
        )
        if isinstance(x0, torch.Tensor):
            self.torch_dtype = x0.dtype if x0.dtype.is_floating_point else torch.get_default_dtype()
            self.device = x0.device
        if isinstance(x0, np.ndarray) and np.issubdtype(x0.dtype, np.floating):
            self.numpy_dtype: np.dtype = x0.dtype
        else:
            self.numpy_dtype = np.dtype(np.float64)

    def to_user_points(self, points: torch.Tensor) -> np.ndarray | torch.Tensor:
        """Return a `(n, d)` or `(d,)` array for the objective: a tensor for tensor x0, else
        a numpy array."""
        if self.kind == "torch":
            return points.detach().to(self.device, self.torch_dtype).clone()
        return points.detach().to("cpu", torch.float64).numpy().astype(self.numpy_dtype)

    def to_result(self, point: torch.Tensor) -> Any:
        """Return ``point`` in the type of x0: tensor, numpy array or list of floats."""
        user = self.to_user_points(point)
        if self.kind == "list":
            return [float(v) for v in user]
        return user


class Evaluator:
    """Evaluates the objective on a batch of points, serially or in one vectorized call.

    Args:
        fun: the objective; ``fun(x)`` with `(d,)` ``x``, or ``fun(X)`` with `(n, d)` ``X``
            returning `(n,)` values when ``vectorized`` is true.
        converter: maps points to the user's array type.
        vectorized: pass the whole batch in one call.
    """

    def __init__(
        self, fun: Callable[..., Any], converter: ArrayConverter, vectorized: bool
    ) -> None:
        if not callable(fun):
            raise TypeError(f"`fun` must be callable, got {short_repr(fun)}")
        if not isinstance(vectorized, bool):
            raise TypeError(f"`vectorized` must be a bool, got {short_repr(vectorized)}")
        self.fun = fun
        self.converter = converter
        self.vectorized = vectorized
        self.calls = 0

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Return the objective's values at ``points``, `(n,)` float64 on the CPU."""
        user_points = self.converter.to_user_points(points)
        if self.vectorized:
            try:
                raw = self.fun(user_points)
            except Exception as error:
                attach_point(error, user_points, [])
                raise
            finally:
                self.calls += points.shape[0]
            return to_values(raw, points.shape[0], "fun")
        values: list[float] = []
        done: list[tuple[Any, float]] = []
        for row in user_points:
            try:
                raw = self.fun(row)
            except Exception as error:
                self.calls += 1
                attach_point(error, row, done)
                raise
            self.calls += 1
            value = to_value(raw, "fun")
            values.append(value)
            done.append((row, value))
        return torch.tensor(values, dtype=torch.float64)

    def evaluate_one(self, point: torch.Tensor) -> float:
        """Return the objective's value at one `(d,)` point."""
        return float(self(point.unsqueeze(0))[0])
