"""Named suites: the benchmarks that ``zerograds bench --suite NAME`` runs.

* ``quick``: every optimizer on the six analytic problems at d = 10, 100, 1000 and on
  bbob-largescale at d = 80 and 320, with small budgets and few seeds.
* ``full``: the same problems with 2 to 10 times the budgets and 2 or 3 seeds, plus COCO
  ``bbob`` at d = 10.
* ``tiny``: a few seconds, for the tests.
"""

from __future__ import annotations

from .optimizers import OPTIMIZERS
from .problems import ANALYTIC
from .runner import Benchmark

BBOB_FUNCTIONS = tuple(range(1, 25))
# The full suite's stored runs were made while lr 0.5σ was ZeroGrads' default, so their lr
# ablation is 0.1σ. The quick suite, run with the current default of 0.1σ, has 0.5σ instead.
# NOTE: a fresh run of the full suite gives `zerograds` the current default, the same as
# `zg_small_lr`, and the estimators of ZeroGrads' family lr 0.1σ instead of the stored 0.5σ.
QUICK_OPTIMIZERS = tuple(name for name in OPTIMIZERS if name != "zg_small_lr")
FULL_OPTIMIZERS = tuple(name for name in OPTIMIZERS if name != "zg_large_lr")
# The three ablations of the sampling run on the analytic problems only, because COCO has 24
# functions per dimension.
SAMPLING_ABLATIONS = ("zg_no_smoothing", "zg_no_antithetic", "zg_step_first")


def _without_sampling_ablations(optimizers: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in optimizers if name not in SAMPLING_ABLATIONS)


def _analytic(dim: int) -> tuple[str, ...]:
    return tuple(f"{name}:{dim}" for name in ANALYTIC)


def _coco(suite: str, dim: int, functions: tuple[int, ...] = BBOB_FUNCTIONS) -> tuple[str, ...]:
    return tuple(f"{suite}:{function}:{dim}" for function in functions)


def _quick() -> list[Benchmark]:
    # The budgets keep this suite within 15 minutes on one core.
    return [
        Benchmark(
            "analytic-d10",
            "Analytic problems, d = 10",
            _analytic(10),
            QUICK_OPTIMIZERS,
            (0, 1),
            max_evals=1_000,
            max_seconds=2.0,
        ),
        Benchmark(
            "analytic-d100",
            "Analytic problems, d = 100",
            _analytic(100),
            QUICK_OPTIMIZERS,
            (0,),
            max_evals=3_000,
            max_seconds=2.0,
        ),
        Benchmark(
            "analytic-d1000",
            "Analytic problems, d = 1000",
            _analytic(1000),
            QUICK_OPTIMIZERS,
            (0,),
            max_evals=5_000,
            max_seconds=2.0,
        ),
        Benchmark(
            "bbob-largescale-d80",
            "COCO bbob-largescale, d = 80",
            _coco("bbob-largescale", 80),
            _without_sampling_ablations(QUICK_OPTIMIZERS),
            (0,),
            max_evals=800,
            max_seconds=1.5,
        ),
        Benchmark(
            "bbob-largescale-d320",
            "COCO bbob-largescale, d = 320",
            _coco("bbob-largescale", 320),
            _without_sampling_ablations(QUICK_OPTIMIZERS),
            (0,),
            max_evals=1_600,
            max_seconds=1.5,
        ),
    ]


def _full() -> list[Benchmark]:
    # Sized to finish in about 80 minutes on a 2-core machine when its benchmarks run as two
    # processes (``--benchmarks``). Optuna's samplers, Nevergrad and dual annealing stop at
    # their wall-clock limit on almost every cell, so these limits set most of the time.
    return [
        Benchmark(
            "analytic-d10",
            "Analytic problems, d = 10",
            _analytic(10),
            FULL_OPTIMIZERS,
            (0, 1, 2),
            max_evals=10_000,
            max_seconds=10.0,
        ),
        Benchmark(
            "analytic-d100",
            "Analytic problems, d = 100",
            _analytic(100),
            FULL_OPTIMIZERS,
            (0, 1),
            max_evals=20_000,
            max_seconds=10.0,
        ),
        Benchmark(
            "analytic-d1000",
            "Analytic problems, d = 1000",
            _analytic(1000),
            FULL_OPTIMIZERS,
            (0, 1),
            max_evals=10_000,
            max_seconds=10.0,
        ),
        Benchmark(
            "bbob-d10",
            "COCO bbob, d = 10",
            _coco("bbob", 10),
            _without_sampling_ablations(FULL_OPTIMIZERS),
            (0,),
            max_evals=5_000,
            max_seconds=5.0,
        ),
        Benchmark(
            "bbob-largescale-d80",
            "COCO bbob-largescale, d = 80",
            _coco("bbob-largescale", 80),
            _without_sampling_ablations(FULL_OPTIMIZERS),
            (0, 1),
            max_evals=8_000,
            max_seconds=5.0,
        ),
        Benchmark(
            "bbob-largescale-d320",
            "COCO bbob-largescale, d = 320",
            _coco("bbob-largescale", 320),
            _without_sampling_ablations(FULL_OPTIMIZERS),
            (0, 1),
            max_evals=6_400,
            max_seconds=5.0,
        ),
    ]


def _tiny() -> list[Benchmark]:
    optimizers = ("zerograds", "antithetic_es", "random_search", "sepcma")
    return [
        Benchmark(
            "tiny-analytic",
            "Analytic problems, d = 4",
            ("sphere:4", "step_ellipsoid:4"),
            optimizers,
            (0, 1),
            max_evals=200,
            max_seconds=10.0,
        ),
        Benchmark(
            "tiny-bbob",
            "COCO bbob, d = 2",
            ("bbob:1:2",),
            optimizers,
            (0,),
            max_evals=100,
            max_seconds=10.0,
        ),
    ]


SUITES = {"quick": _quick, "full": _full, "tiny": _tiny}


def get_suite(name: str) -> list[Benchmark]:
    """Return the benchmarks of the suite ``name``.

    Raises:
        ValueError: no suite has that name.
    """
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {sorted(SUITES)}")
    return SUITES[name]()
