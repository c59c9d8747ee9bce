"""Warnings and errors raised by zerograds."""

from __future__ import annotations


class ZeroGradsWarning(UserWarning):
    """Base class of every warning that zerograds emits."""


class NumericsWarning(ZeroGradsWarning):
    """A numerical problem that the optimizer handled, such as a dropped NaN value."""


class NonFiniteObjectiveError(RuntimeError):
    """Raised when the objective returned no finite value for too many iterations in a row."""
