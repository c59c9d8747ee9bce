"""zerograds: gradient-based optimization of black boxes through learned local surrogates.

An implementation of ZeroGrads (M. Fischer, T. Ritschel, "ZeroGrads: Learning Local
Surrogates for Non-Differentiable Graphics", ACM TOG 43(4), SIGGRAPH 2024).

Three entry points share one core:

* ``minimize(fun, x0, ...)``: a scipy-style driver.
* ``ZeroGrads(x0, ...)``: ask/tell.
* ``BlackBox(fun, dim, ...)``: a ``torch.nn.Module`` whose backward is the surrogate's gradient.
"""

from __future__ import annotations

from .blackbox import BlackBox
from .core import ZeroGrads
from .exceptions import (
    EvaluationTimeoutError,
    NonFiniteObjectiveError,
    NumericsWarning,
    RunLockedError,
    StorageError,
    WorkerLostError,
    ZeroGradsWarning,
)
from .minimize import minimize
from .result import HistoryEntry, OptimizeResult
from .storage import RunStore
from .surrogate import MLP, PositionalEncoding, build_surrogate

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "BlackBox",
    "EvaluationTimeoutError",
    "HistoryEntry",
    "NonFiniteObjectiveError",
    "NumericsWarning",
    "OptimizeResult",
    "PositionalEncoding",
    "RunLockedError",
    "RunStore",
    "StorageError",
    "WorkerLostError",
    "ZeroGrads",
    "ZeroGradsWarning",
    "__version__",
    "build_surrogate",
    "minimize",
]
