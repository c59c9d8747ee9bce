"""Warnings and errors raised by zerograds."""

from __future__ import annotations


class ZeroGradsWarning(UserWarning):
    """Base class of every warning that zerograds emits."""


class NumericsWarning(ZeroGradsWarning):
    """A numerical problem that the optimizer handled, such as a dropped NaN value."""


class NonFiniteObjectiveError(RuntimeError):
    """Raised when no evaluation gave a finite value for too many iterations in a row.

    Either the objective returned NaN or ±inf, or under ``on_error="skip"`` it raised, timed out
    or lost its worker at every point. The message of ``minimize`` counts each kind.
    """


class EvaluationTimeoutError(TimeoutError):
    """Raised when one evaluation of the objective ran longer than the ``timeout`` option."""


class WorkerLostError(RuntimeError):
    """Raised when a worker died while evaluating a point and the point could not be retried."""


class StorageError(RuntimeError):
    """Raised when a run database or one of its checkpoints cannot be read or written."""


class RunLockedError(StorageError):
    """Raised when another live process owns the run that was asked for."""
