"""What to do with a failed evaluation, and the record of each evaluation.

``FailurePolicy`` is the user's choice for errors, timeouts and non-finite values,
``FailureCounts`` counts what happened under it, and ``Evaluation`` records one evaluation as
results and run databases store it. ``zerograds._evaluation.Evaluator`` applies the policy.
``FailedBatches`` tallies a streak of batches in which every point failed, for ``minimize``'s
error message.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass

import torch

from ._validation import _to_float, check_choice, check_positive_float, is_finite_in, short_repr

POLICIES = ("raise", "skip", "penalty")

# Longest accepted ``timeout`` in seconds (about 3 years); the timers used to enforce it
# (``signal.setitimer``, ``Thread.join``) overflow near 9e9 seconds on 64-bit Linux.
MAX_TIMEOUT = 1e8

# Evaluation statuses as recorded in results and run databases.
STATUS_OK, STATUS_NONFINITE = "ok", "nonfinite"


@dataclass(frozen=True)
class FailurePolicy:
    """Failure policy: the handling of a failed evaluation.

    Attributes:
        on_error: for an exception raised by ``fun``, a timeout or a worker that died too
            often: ``"raise"`` propagates it, ``"skip"`` drops the point from the batch,
            ``"penalty"`` uses ``penalty`` as its value.
        on_nonfinite: the same choice for a NaN or infinite value. ``"skip"`` drops it, as the
            optimizer does with every non-finite value.
        penalty: finite value assigned under a ``"penalty"`` policy. It must also be finite in
            the optimizer's dtype (at most about 3.4e38 in absolute value for float32), see
            ``check_dtype``.
        timeout: seconds one evaluation may take; ``None`` for no limit.
    """

    on_error: str = "raise"
    on_nonfinite: str = "skip"
    penalty: float | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        check_choice("on_error", self.on_error, POLICIES)
        check_choice("on_nonfinite", self.on_nonfinite, POLICIES)
        uses_penalty = "penalty" in (self.on_error, self.on_nonfinite)
        if self.penalty is None and uses_penalty:
            raise ValueError(
                "`penalty` must be a finite number when on_error or on_nonfinite is 'penalty', "
                "got None"
            )
        if self.penalty is not None:
            if not uses_penalty:
                raise ValueError(
                    "`penalty` applies only with on_error='penalty' or on_nonfinite='penalty', "
                    f"got penalty={short_repr(self.penalty)} with on_error={self.on_error!r} "
                    f"and on_nonfinite={self.on_nonfinite!r}"
                )
            if isinstance(self.penalty, bool) or not isinstance(self.penalty, numbers.Real):
                raise TypeError(f"`penalty` must be a real number, got {short_repr(self.penalty)}")
            if not math.isfinite(_to_float(self.penalty)):
                raise ValueError(f"`penalty` must be finite, got {short_repr(self.penalty)}")
        if self.timeout is not None:
            timeout = check_positive_float("timeout", self.timeout)
            if timeout > MAX_TIMEOUT:
                raise ValueError(
                    f"`timeout` must be at most {MAX_TIMEOUT:.0e} seconds, got {timeout!r}; "
                    "pass None for no limit"
                )

    def check_dtype(self, dtype: torch.dtype) -> None:
        """Raise ``ValueError`` when ``penalty`` is not finite in ``dtype``, the optimizer's
        working dtype, where it would reach the surrogate as ±inf."""
        if self.penalty is None or is_finite_in(float(self.penalty), dtype):
            return
        raise ValueError(
            f"`penalty` must be at most {torch.finfo(dtype).max:.4g} in absolute value, the "
            f"largest {dtype} value (the optimizer's dtype), got {short_repr(self.penalty)}"
        )


@dataclass
class FailureCounts:
    """Counts of failed evaluations and of what was done with them.

    Attributes:
        errors: calls in which ``fun`` raised.
        timeouts: calls that exceeded ``timeout``.
        lost: points whose worker died on every retry.
        nonfinite: calls that returned NaN or ±inf.
        skipped: errors, timeouts and lost points dropped from their batch.
        penalized: values replaced by ``penalty``.
        retries: submissions of a point again after its worker died.
    """

    errors: int = 0
    timeouts: int = 0
    lost: int = 0
    nonfinite: int = 0
    skipped: int = 0
    penalized: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a plain dict."""
        return dict(vars(self))


@dataclass(frozen=True)
class Evaluation:
    """One evaluation after the failure policy was applied.

    Attributes:
        status: ``"ok"``, ``"nonfinite"``, ``"error"``, ``"timeout"`` or ``"lost"``.
        raw: the value ``fun`` returned; NaN when it returned none.
        value: the value passed to the optimizer; NaN when the point was skipped.
        action: ``"used"``, ``"skipped"``, ``"penalized"`` or ``"raised"``.
        error: type and message of the error, if any.
        seconds: wall-clock seconds of the call.
    """

    status: str
    raw: float
    value: float
    action: str
    error: str | None
    seconds: float


class FailedBatches:
    """Tally of the evaluations in the current streak of batches without a finite value.

    ``ZeroGrads.tell`` raises ``NonFiniteObjectiveError`` after ``max_nonfinite_iterations``
    such batches. Points skipped after an exception, a timeout or a lost worker reach it as
    NaN, so this tally lets ``minimize`` report which failures emptied the batches.
    """

    def __init__(self) -> None:
        self.batches = 0
        self.statuses: Counter[str] = Counter()
        self.last_error = ""  # "Type: message" of the last exception, as results store it

    def add(self, evaluations: list[Evaluation]) -> None:
        """Count a batch's failures, or start a new streak when it has a finite value."""
        # A used or penalized value is finite in the optimizer's dtype; a skipped one is not.
        if any(e.action in ("used", "penalized") for e in evaluations):
            self.batches = 0
            self.statuses.clear()
            self.last_error = ""
            return
        self.batches += 1
        for evaluation in evaluations:
            self.statuses[evaluation.status] += 1
            if evaluation.status == "error" and evaluation.error is not None:
                self.last_error = evaluation.error

    def has_failures(self) -> bool:
        """Return whether the streak has exceptions, timeouts or lost points, not only
        non-finite values."""
        return any(self.statuses[status] for status in ("error", "timeout", "lost"))

    def describe(self, theta: str) -> str:
        """Return the error message for the streak, with ``theta`` as the repr of θ."""
        # NOTE: a resumed run counts only the batches since its last checkpoint, so the
        # streak it reports can be shorter than the optimizer's.
        parts = []
        if self.statuses["error"]:
            last = self.last_error if len(self.last_error) <= 200 else self.last_error[:197] + "..."
            parts.append(f"{self.statuses['error']} raised an exception (last: {last})")
        if self.statuses["timeout"]:
            parts.append(f"{self.statuses['timeout']} timed out")
        if self.statuses["lost"]:
            parts.append(f"{self.statuses['lost']} lost their worker")
        if self.statuses["nonfinite"]:
            parts.append(f"{self.statuses['nonfinite']} returned a non-finite value")
        return (
            f"every point of the last {self.batches} batches failed: {', '.join(parts)}; "
            f"check `fun` near θ={theta}"
        )
