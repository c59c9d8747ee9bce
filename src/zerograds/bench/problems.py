"""Benchmark problems: analytic functions of any dimension and COCO's ``bbob`` suites.

A problem is named by a spec string:

* ``NAME:DIM`` for an analytic function, e.g. ``ellipsoid:100`` (see ``ANALYTIC``);
* ``SUITE:FUNCTION:DIM`` for COCO, e.g. ``bbob-largescale:8:80``; the instance comes from the
  run's seed (seed s is instance s + 1), as COCO's experiments vary instances, not seeds.

Every analytic function has its minimum f* = 0 at a point x* drawn once per (name, d) from
U[-3, 3]^d, and its start x0 drawn from U[-4, 4]^d, independently. An optimizer biased
toward the origin, or toward the start's mirror image, gets no help. The box is [-5, 5]^d,
as in COCO.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BOX = (-5.0, 5.0)
COCO_SUITES = ("bbob", "bbob-largescale")
# Dimensions COCO 2.8 defines for each suite.
COCO_DIMENSIONS = {"bbob": (2, 3, 5, 10, 20, 40), "bbob-largescale": (20, 40, 80, 160, 320, 640)}

Objective = Callable[[np.ndarray], np.ndarray]


@dataclass
class Problem:
    """One benchmark problem, ready to evaluate.

    Attributes:
        spec: the spec string it was built from, without the instance.
        name: a short label for tables, e.g. ``"ellipsoid"`` or ``"f8"``.
        suite: ``"analytic"``, ``"bbob"`` or ``"bbob-largescale"``.
        dim: number of variables d.
        x0: start point, `(d,)`.
        lower, upper: box bounds, `(d,)` each.
        evaluate: vectorized objective, `(n, d)` array to `(n,)` values.
        f0: objective value at ``x0``.
        f_opt: optimal value f*, or ``None`` until a COCO run has logged it.
        coco_problem: the ``cocoex`` problem, for COCO problems.
        coco_suite: the ``cocoex.Suite`` it came from. It must outlive the problem: with an
            observer attached, evaluating a problem whose suite was garbage-collected crashes
            the interpreter (cocoex 2.8.2, segmentation fault).
    """

    spec: str
    name: str
    suite: str
    dim: int
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    evaluate: Objective
    f0: float
    f_opt: float | None
    coco_problem: Any = field(default=None, repr=False)
    coco_suite: Any = field(default=None, repr=False)


# ---------------------------------------------------------------------- analytic functions
def _sphere(z: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    return np.sum(z**2, axis=1)


def _ellipsoid(z: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    # Condition number 1e6 along the axes of a random rotation.
    return (z @ state["rotation"].T) ** 2 @ state["weights"]


def _rosenbrock(z: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    # Shifted so that the minimum (at 1 in the textbook form) lies at x*.
    y = z + 1.0
    return np.sum(100.0 * (y[:, 1:] - y[:, :-1] ** 2) ** 2 + (1.0 - y[:, :-1]) ** 2, axis=1)


def _rastrigin(z: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    return np.sum(z**2 - 10.0 * np.cos(2.0 * math.pi * z) + 10.0, axis=1)


def _ackley(z: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    d = z.shape[1]
    first = -20.0 * np.exp(-0.2 * np.sqrt(np.sum(z**2, axis=1) / d))
    second = -np.exp(np.sum(np.cos(2.0 * math.pi * z), axis=1) / d)
    return first + second + 20.0 + math.e


def _step_ellipsoid(z: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    # z is x - x* with x* on the grid, so rounding z to the grid of 0.5 rounds x. The function
    # is piecewise constant: its gradient is zero wherever it exists.
    quantized = np.round(z / 0.5) * 0.5
    return quantized**2 @ state["step_weights"]


ANALYTIC: dict[str, Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray]] = {
    "sphere": _sphere,
    "ellipsoid": _ellipsoid,
    "rosenbrock": _rosenbrock,
    "rastrigin": _rastrigin,
    "ackley": _ackley,
    "step_ellipsoid": _step_ellipsoid,
}


def _analytic_state(name: str, dim: int) -> dict[str, np.ndarray]:
    """Draw x*, x0 and the function's constants from a generator seeded by (name, d)."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), dim])
    x_opt = rng.uniform(-3.0, 3.0, dim)
    if name == "step_ellipsoid":
        x_opt = np.round(x_opt / 0.5) * 0.5
    state = {"x_opt": x_opt, "x0": rng.uniform(-4.0, 4.0, dim)}
    exponents = np.arange(dim) / max(dim - 1, 1)
    if name == "ellipsoid":
        # QR of a Gaussian matrix, with the signs fixed, is a uniformly random rotation.
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        state["rotation"] = q * np.sign(np.diag(r))
        state["weights"] = 10.0 ** (6.0 * exponents)
    if name == "step_ellipsoid":
        state["step_weights"] = 10.0 ** (3.0 * exponents)
    return state


def make_analytic(name: str, dim: int) -> Problem:
    """Build the analytic problem ``name`` in ``dim`` variables."""
    if name not in ANALYTIC:
        raise ValueError(f"unknown analytic problem {name!r}; expected one of {sorted(ANALYTIC)}")
    function = ANALYTIC[name]
    state = _analytic_state(name, dim)
    x_opt = state["x_opt"]

    def evaluate(points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return function(points - x_opt, state)

    x0 = state["x0"]
    return Problem(
        spec=f"{name}:{dim}",
        name=name,
        suite="analytic",
        dim=dim,
        x0=x0,
        lower=np.full(dim, BOX[0]),
        upper=np.full(dim, BOX[1]),
        evaluate=evaluate,
        f0=float(evaluate(x0[None, :])[0]),
        f_opt=0.0,
    )


# ---------------------------------------------------------------------- COCO
def _coco_problem(suite: str, function: int, dim: int, instance: int) -> tuple[Any, Any]:
    """Return the ``cocoex`` suite and its one problem with these indices."""
    import cocoex

    # "instances:N" is COCO's instance number N; "instance_indices:N" would be the N-th
    # instance of the suite's year, which differs from N above 5.
    options = f"function_indices:{function} dimensions:{dim}"
    try:
        coco_suite = cocoex.Suite(suite, f"instances:{instance}", options)
        problem = next(iter(coco_suite), None)
    except cocoex.exceptions.NoSuchSuiteException:
        problem = None  # cocoex 2.8 raises this also for indices outside the suite
    if problem is None:
        raise ValueError(
            f"COCO suite {suite!r} has no function {function} in dimension {dim} with instance "
            f"{instance}; dimensions are {COCO_DIMENSIONS[suite]} and functions 1-24"
        )
    return coco_suite, problem


def make_coco(suite: str, function: int, dim: int, instance: int, observer: Any = None) -> Problem:
    """Build a COCO problem through ``cocoex``, observed by ``observer`` when one is given.

    ``f0`` is computed on a second, unobserved copy, so that it does not appear in COCO's log.
    ``f_opt`` stays ``None``: cocoex 2.8 exposes f* of ``bbob`` problems only through
    ``BareProblem``, and of ``bbob-largescale`` problems not at all, so the runner reads it
    from the observer's log after the run (see ``read_coco_f_opt``).
    """
    coco_suite, problem = _coco_problem(suite, function, dim, instance)
    if observer is not None:
        problem.observe_with(observer)
    x0 = np.array(problem.initial_solution, dtype=np.float64)
    unobserved_suite, unobserved = _coco_problem(suite, function, dim, instance)
    f0 = float(unobserved(x0))
    unobserved.free()
    del unobserved_suite

    def evaluate(points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return np.array([problem(point) for point in points], dtype=np.float64)

    return Problem(
        spec=f"{suite}:{function}:{dim}",
        name=f"f{function}",
        suite=suite,
        dim=dim,
        x0=x0,
        lower=np.array(problem.lower_bounds, dtype=np.float64),
        upper=np.array(problem.upper_bounds, dtype=np.float64),
        evaluate=evaluate,
        f0=f0,
        f_opt=None,
        coco_problem=problem,
        coco_suite=coco_suite,
    )


_FOPT_PATTERN = re.compile(r"Fopt \(([-+0-9.eE]+)\)")


def read_coco_f_opt(folder: Path) -> float | None:
    """Return f* from the header of the first ``.dat`` file COCO logged under ``folder``.

    COCO's ``bbob`` logger writes ``best noise-free fitness - Fopt (<f*>)`` into that header
    (cocoex 2.8); ``None`` when no file or no such header is found.
    """
    for path in sorted(folder.rglob("*.dat")):
        with path.open() as handle:
            match = _FOPT_PATTERN.search(handle.readline())
        if match:
            return float(match.group(1))
    return None


# ---------------------------------------------------------------------- specs
def parse_spec(spec: str) -> tuple[str, tuple[int, ...]]:
    """Split a spec into its family (analytic name or COCO suite) and its integers.

    Raises:
        ValueError: the spec is malformed or names an unknown family.
    """
    parts = spec.split(":")
    family = parts[0]
    try:
        numbers = tuple(int(part) for part in parts[1:])
    except ValueError:
        numbers = ()
    if family in ANALYTIC and len(numbers) == 1 and numbers[0] >= 1:
        return family, numbers
    if family in COCO_SUITES and len(numbers) == 2:
        return family, numbers
    raise ValueError(
        f"invalid problem spec {spec!r}; expected NAME:DIM with NAME in {sorted(ANALYTIC)} "
        f"or SUITE:FUNCTION:DIM with SUITE in {COCO_SUITES}"
    )


def problem_dim(spec: str) -> int:
    """Return the number of variables of the problem ``spec``."""
    _family, numbers = parse_spec(spec)
    return numbers[-1]


def make_problem(spec: str, seed: int, observer: Any = None) -> Problem:
    """Build the problem ``spec`` for the run with ``seed`` (COCO: instance ``seed + 1``)."""
    family, numbers = parse_spec(spec)
    if family in ANALYTIC:
        return make_analytic(family, numbers[0])
    function, dim = numbers
    return make_coco(family, function, dim, seed + 1, observer)
