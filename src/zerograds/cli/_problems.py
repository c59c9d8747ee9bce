"""Objectives of ``zerograds run``: COCO problems and a user's ``MODULE:CALLABLE``."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..bench.problems import COCO_DIMENSIONS

COCO_SUITES = ("bbob", "bbob-largescale")
COCO_FUNCTIONS = range(1, 25)  # both suites have the 24 bbob functions
# NOTE: a chosen safe limit. cocoex 2.8.2 accepts instance 2**32 but crashes the interpreter
# (segmentation fault) on instance 10**12.
MAX_COCO_INSTANCE = 2**31 - 1
_PROBLEM_PATTERN = re.compile(
    r"^(?P<suite>[a-z-]+):(?P<function>\d+):(?P<dim>\d+)(:(?P<instance>\d+))?$"
)


class ObjectiveError(RuntimeError):
    """The objective of ``--function`` raised, or returned something that is not a number.

    The message names the function, what it returned or raised, and the point. ``values``
    contains the values of the batch's points evaluated before the failing one, in order.
    """

    def __init__(self, message: str, values: list[float] | None = None) -> None:
        super().__init__(message)
        self.values = list(values or [])


@dataclass
class Problem:
    """An objective prepared for the driving loop.

    Attributes:
        name: label used in output and plot titles.
        dim: number of parameters d.
        x0: start point, `(d,)`.
        evaluate: maps `(n, d)` points to `(n,)` objective values.
        bounds: optional box ``(lower, upper)``, each `(d,)`.
        f_opt: optimal value when known, to report the precision f - f_opt.
        coco_problem: the ``cocoex`` problem, to ask whether COCO's final target was hit.
        evaluate_point: maps one `(d,)` point to its value, for an objective that is called
            point by point (``--function`` without ``--vectorized``); ``None`` otherwise.
    """

    name: str
    dim: int
    x0: np.ndarray
    evaluate: Callable[[np.ndarray], np.ndarray]
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    f_opt: float | None = None
    coco_problem: Any = None
    evaluate_point: Callable[[np.ndarray], float] | None = None


def load_coco_problem(spec: str) -> Problem:
    """Build a ``Problem`` from ``SUITE:FUNCTION:DIM[:INSTANCE]`` through ``cocoex``.

    Raises:
        ValueError: the spec is malformed, the suite unknown, or COCO has no such problem.
    """
    match = _PROBLEM_PATTERN.match(spec)
    if match is None:
        raise ValueError(
            f"invalid --problem {spec!r}; expected SUITE:FUNCTION:DIM[:INSTANCE], e.g. bbob:1:5:1"
        )
    suite_name = match["suite"]
    if suite_name not in COCO_SUITES:
        raise ValueError(
            f"invalid COCO suite {suite_name!r} in --problem; expected one of {COCO_SUITES}"
        )
    function, dim = int(match["function"]), int(match["dim"])
    instance = int(match["instance"] or 1)
    # cocoex clamps indices outside the suite's ranges with only a warning (function 99 then
    # aborts with "COCO FATAL ERROR", dimension 1 silently becomes 2), so check them first.
    check_coco_indices(spec, suite_name, function, dim, instance)

    import cocoex

    # "instances:N" selects COCO's instance number N, which BareProblem below uses too. The
    # option "instance_indices:N" would select the N-th instance of the suite's year instead.
    options = f"function_indices:{function} dimensions:{dim}"
    try:
        problem = next(iter(cocoex.Suite(suite_name, f"instances:{instance}", options)), None)
    except cocoex.exceptions.NoSuchSuiteException:
        # cocoex 2.8 raises this, naming the suite, also when the suite exists but contains no
        # problem with these indices.
        problem = None
    if problem is None:
        raise ValueError(
            f"COCO suite {suite_name!r} has no function {function} in dimension {dim} with "
            f"instance {instance}; check the suite's dimensions (bbob: 2, 3, 5, 10, 20, 40; "
            "bbob-largescale: 20, 40, 80, 160, 320, 640) and functions (1-24)"
        )

    f_opt = None
    if suite_name == "bbob":
        # cocoex's suite problems do not expose f_opt; the bare bbob problem does.
        f_opt = float(cocoex.BareProblem("bbob", function, dim, instance).best_value())
    # NOTE: cocoex 2.8 has no bare bbob-largescale problem, so f - f_opt is not reported there.

    def evaluate(points: np.ndarray) -> np.ndarray:
        return np.array([problem(point) for point in points], dtype=np.float64)

    return Problem(
        name=problem.id,
        dim=dim,
        x0=np.array(problem.initial_solution, dtype=np.float64),
        evaluate=evaluate,
        bounds=(np.array(problem.lower_bounds), np.array(problem.upper_bounds)),
        f_opt=f_opt,
        coco_problem=problem,
    )


def check_coco_indices(spec: str, suite_name: str, function: int, dim: int, instance: int) -> None:
    """Raise ``ValueError`` for a function, dimension or instance that the suite lacks."""
    if function not in COCO_FUNCTIONS:
        raise ValueError(
            f"COCO suite {suite_name!r} has no function {function} (--problem {spec!r}); "
            f"its functions are {COCO_FUNCTIONS.start}-{COCO_FUNCTIONS.stop - 1}"
        )
    dimensions = COCO_DIMENSIONS[suite_name]
    if dim not in dimensions:
        raise ValueError(
            f"COCO suite {suite_name!r} has no function {function} in dimension {dim} "
            f"(--problem {spec!r}); its dimensions are {', '.join(map(str, dimensions))}"
        )
    if not 1 <= instance <= MAX_COCO_INSTANCE:
        raise ValueError(
            f"invalid COCO instance {instance} in --problem {spec!r}; expected an integer from "
            f"1 to {MAX_COCO_INSTANCE}"
        )


def import_objective_module(module_name: str, spec: str) -> ModuleType:
    """Import the module of ``--function`` with the working directory on ``sys.path``.

    ``python -m zerograds`` puts the working directory first on ``sys.path``, but the
    ``zerograds`` console script puts its own folder there. This inserts the working directory
    at position 0 as ``python -m`` does and leaves it there, so that the objective can also
    import modules beside it when it is called.

    Raises:
        ModuleNotFoundError: the module or its package is not found. The message lists the
            folders searched.
    """
    cwd = os.getcwd()
    if not any(os.path.realpath(entry or os.curdir) == os.path.realpath(cwd) for entry in sys.path):
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name != missing and not module_name.startswith(f"{missing}."):
            raise  # a module that the objective's module imports is missing
        searched = ", ".join(entry or os.curdir for entry in sys.path)
        raise ModuleNotFoundError(
            f"No module named {missing!r} for --function {spec!r}; searched the working "
            f"directory {cwd} and sys.path ({searched}). Run zerograds in the folder that "
            "contains the module or add that folder to PYTHONPATH",
            name=missing,
        ) from None


def load_function_problem(
    spec: str, dim: int | None, x0: list[float] | None, vectorized: bool
) -> Problem:
    """Build a ``Problem`` from ``MODULE:CALLABLE`` and the start point.

    Raises:
        ValueError: malformed spec, missing or invalid ``dim``, or ``x0`` of the wrong length.
        ImportError, AttributeError: the module or the callable does not exist.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            f"invalid --function {spec!r}; expected MODULE:CALLABLE, e.g. mymodule:loss"
        )
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise ValueError(
            f"invalid module name {module_name!r} in --function {spec!r}; expected a dotted "
            "Python module name such as mypackage.objectives, not a file path. Run zerograds "
            "in the folder that contains the module or add that folder to PYTHONPATH"
        )
    if not all(part.isidentifier() for part in attribute.split(".")):
        raise ValueError(
            f"invalid callable name {attribute!r} in --function {spec!r}; expected a Python "
            "name such as loss or Model.loss"
        )
    if dim is None or dim < 1:
        raise ValueError(f"--function needs --dim, a positive integer; got {dim}")
    module = import_objective_module(module_name, spec)
    fun = module
    for part in attribute.split("."):
        fun = getattr(fun, part)
    if not callable(fun):
        raise TypeError(f"--function {spec!r} is not callable, got {type(fun).__name__}")

    if x0 is None:
        start = np.zeros(dim)
    elif len(x0) in (1, dim):
        start = np.broadcast_to(np.asarray(x0, dtype=np.float64), (dim,)).copy()
    else:
        raise ValueError(f"--x0 has {len(x0)} numbers; expected 1 or --dim={dim}")

    label = f"--function {spec}"

    def evaluate_point(point: np.ndarray) -> float:
        try:
            raw = fun(point)
        except Exception as error:
            raise ObjectiveError(
                f"{label} raised {describe_error(error)} at x={short(point)}"
            ) from error
        value = as_number(raw)
        if value is None:
            raise ObjectiveError(
                f"{label} returned {short(raw)} at x={short(point)}; it must return a real "
                "number (a float, an int or an array of one number)"
            )
        return value

    def evaluate_batch(points: np.ndarray) -> np.ndarray:
        if vectorized:
            return call_vectorized(fun, points, label)
        values: list[float] = []
        for point in points:
            try:
                values.append(evaluate_point(point))
            except ObjectiveError as error:
                error.values = values
                raise
        return np.array(values, dtype=np.float64)

    return Problem(
        name=spec,
        dim=dim,
        x0=start,
        evaluate=evaluate_batch,
        evaluate_point=None if vectorized else evaluate_point,
    )


def call_vectorized(fun: Callable[[Any], Any], points: np.ndarray, label: str) -> np.ndarray:
    """Return ``fun(points)`` as `(n,)` float64 values; raise ``ObjectiveError`` otherwise."""
    count = len(points)
    where = f"on a batch of {count} points (first x={short(points[0])})"
    try:
        raw = fun(points)
    except Exception as error:
        raise ObjectiveError(
            f"{label} (--vectorized) raised {describe_error(error)} {where}"
        ) from error
    array = _as_array(raw)
    if array is None or array.size != count or array.dtype.kind not in "iuf":
        raise ObjectiveError(
            f"{label} (--vectorized) returned {short(raw)} {where}; it must return {count} "
            "real numbers, one per row. Drop --vectorized if it takes one point"
        )
    return array.astype(np.float64).reshape(-1)


def as_number(raw: Any) -> float | None:
    """Return ``raw`` as a float if it is one real number (NaN and ±inf included), else None.

    Accepted: int, float, numpy integer and floating scalars, and arrays or tensors holding
    one such number. Rejected: None, bool, complex, strings and everything else.
    """
    if isinstance(raw, (bool, np.bool_)):
        return None
    if isinstance(raw, (int, float, np.integer, np.floating)):
        try:
            return float(raw)
        except OverflowError:  # an int beyond the float range
            return None
    array = _as_array(raw)
    if array is None or array.size != 1 or array.dtype.kind not in "iuf":
        return None
    try:
        return float(array.reshape(()))
    except OverflowError:
        return None


def _as_array(raw: Any) -> np.ndarray | None:
    if raw is None or isinstance(raw, (str, bytes)):
        return None
    if hasattr(raw, "detach") and hasattr(raw, "cpu"):  # a torch tensor
        raw = raw.detach().cpu()
    try:
        return np.asarray(raw)
    except Exception:  # objects that numpy cannot convert
        return None


def describe_error(error: BaseException) -> str:
    """Return ``"Type: message"`` of ``error`` on one line, cut to 200 characters."""
    text = " ".join(str(error).split())
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def short(value: Any, limit: int = 120) -> str:
    """Return a one-line description of ``value`` of at most about ``limit`` characters.

    A 1-D numeric array shows its numbers with 4 significant digits, only the first and last
    three when it is long. Other arrays show their shape and dtype.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iuf":
        numbers = [f"{number:.4g}" for number in value.tolist()]
        if len(numbers) > 8:
            numbers = [*numbers[:3], "...", *numbers[-3:]]
            return f"[{', '.join(numbers)}] (d={value.size})"
        return f"[{', '.join(numbers)}]"
    if isinstance(value, np.ndarray) and value.size != 1:
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
