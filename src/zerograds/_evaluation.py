"""Calling the user's objective on the optimizer's points.

``Evaluator`` converts the optimizer's `(n, d)` tensors into the array type the user works with
(numpy arrays, or tensors of x0's dtype and device), calls the objective through a backend of
``zerograds.parallel`` (in this process, on a pool or on an executor) and checks what comes
back. A ``FailurePolicy`` (see ``zerograds._failure_policy``) decides what happens to an
exception, a timeout or a non-finite value: under ``"raise"`` (the default for exceptions) the
exception propagates unchanged, with the point that caused it and the values already computed
for the batch attached (see ``attach_point``).
A ``Journal`` records each evaluation and returns the ones already made when a run resumes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from ._failure_policy import (
    STATUS_NONFINITE,
    STATUS_OK,
    Evaluation,
    FailureCounts,
    FailurePolicy,
)
from ._validation import is_finite_in, short_repr, to_values
from ._worker import ERROR, INVALID, LOST, OK, TIMEOUT, Outcome, call_with_timeout
from .exceptions import EvaluationTimeoutError, NonFiniteObjectiveError
from .parallel import Backend, make_backend

logger = logging.getLogger(__name__)


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
    if isinstance(error, NonFiniteObjectiveError):
        return  # its message already names the value and x, and the objective did not raise
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


# Failures logged at WARNING before the rest go to DEBUG, so a failing objective does not
# flood the log; the totals are in ``FailureCounts`` and the result.
_LOGGED_FAILURES = 10


class Journal(Protocol):
    """Where an ``Evaluator`` records evaluations and finds the ones already made.

    ``seq`` numbers the calls of a run from 0; ``point_hash`` identifies the point.
    """

    def lookup(self, seq: int, point_hash: str) -> Evaluation | None: ...

    def record(self, seq: int, point_hash: str, kind: str, evaluation: Evaluation) -> None: ...


def point_hash(point: torch.Tensor) -> str:
    """Return a hex digest of the exact bits of one `(d,)` optimizer point."""
    data = point.detach().to("cpu").contiguous().numpy().tobytes()
    return hashlib.sha256(str(point.dtype).encode() + data).hexdigest()[:32]


class Evaluator:
    """Evaluates the objective on a batch of points and applies the failure policy.

    Args:
        fun: the objective; ``fun(x)`` with `(d,)` ``x``, or ``fun(X)`` with `(n, d)` ``X``
            returning `(n,)` values when ``vectorized`` is true.
        converter: maps points to the user's array type.
        vectorized: pass the whole batch in one call in this process.
        policy: what to do with errors, timeouts and non-finite values.
        workers: size of a local pool; ``None`` evaluates in this process.
        executor: ``"process"`` or ``"thread"`` for the local pool, or an executor instance,
            see ``zerograds.parallel.make_backend``.
        max_retries: submissions of a point again after its worker died.

    ``calls`` counts the calls of ``fun``; a point replayed from ``journal`` counts as the
    call it was when it was recorded.
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        converter: ArrayConverter,
        vectorized: bool,
        *,
        policy: FailurePolicy | None = None,
        workers: int | None = None,
        executor: Any = None,
        max_retries: int = 3,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"`fun` must be callable, got {short_repr(fun)}")
        if not isinstance(vectorized, bool):
            raise TypeError(f"`vectorized` must be a bool, got {short_repr(vectorized)}")
        if vectorized and (workers is not None or executor is not None):
            raise ValueError(
                "`vectorized`=True evaluates each batch in one call in this process and cannot "
                f"be combined with workers={short_repr(workers)} or "
                f"executor={short_repr(executor)}"
            )
        self.fun = fun
        self.converter = converter
        self.vectorized = vectorized
        self.policy = policy if policy is not None else FailurePolicy()
        self.backend: Backend = make_backend(workers, executor, max_retries)
        self.journal: Journal | None = None
        self.counts = FailureCounts()
        self.calls = 0
        self._failures_logged = 0
        # The dtype of the points of the current batch, the optimizer's working dtype: a value
        # that is not finite in it counts as non-finite.
        self._dtype = torch.float64
        self._checked_dtypes: set[torch.dtype] = set()

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Return the values to tell the optimizer at ``points``, `(n,)` float64 on the CPU."""
        return self.evaluate(points)[0]

    def evaluate_one(self, point: torch.Tensor, kind: str = "theta") -> float:
        """Return the objective's value at one `(d,)` point, after the failure policy.

        A value that is not finite in ``point``'s dtype counts as non-finite. When skipped, it
        comes back as NaN or ±inf.
        """
        return float(self.evaluate(point.unsqueeze(0), kind)[0][0])

    def close(self) -> None:
        """Release the workers of the backend."""
        self.backend.close()

    def evaluate(
        self, points: torch.Tensor, kind: str = "sample"
    ) -> tuple[torch.Tensor, list[Evaluation]]:
        """Evaluate `(n, d)` ``points``; return the values to tell, `(n,)`, and one
        ``Evaluation`` per point, both in point order.

        Points already in the journal are taken from it without calling ``fun``. A value that
        is not finite in ``points``' dtype (the optimizer's working dtype), such as 1e39 for
        float32, counts as non-finite and is handled by ``on_nonfinite``. When skipped, it
        reaches the optimizer as ±inf.

        Raises:
            Exception: what ``fun`` raised, ``EvaluationTimeoutError``, ``WorkerLostError``
                or ``NonFiniteObjectiveError`` under a ``"raise"`` policy, with the point
                attached (see ``attach_point``).
            TypeError, ValueError: ``fun`` returned something that is not a number, with the
                point and the batch's finished evaluations attached as for an error; or
                ``penalty`` is not finite in ``points``' dtype.
        """
        self._dtype = points.dtype
        if points.dtype not in self._checked_dtypes:
            self.policy.check_dtype(points.dtype)
            self._checked_dtypes.add(points.dtype)
        count = points.shape[0]
        first = self.calls
        hashes = [point_hash(p) for p in points] if self.journal is not None else []
        results: list[Evaluation | None] = [None] * count
        if self.journal is not None:
            for index in range(count):
                results[index] = self.journal.lookup(first + index, hashes[index])
                if results[index] is not None:
                    self._count(results[index])
        missing = [i for i in range(count) if results[i] is None]

        user_points = self.converter.to_user_points(points)
        made = 0
        done: list[tuple[Any, float]] = []
        retries_before = self.backend.retries
        try:
            if missing and self.vectorized:
                made = len(missing)
                outcomes = self._call_vectorized(user_points, missing)
                settled = [
                    self._settle(outcome, user_points[index], done)
                    for index, outcome in zip(missing, outcomes, strict=True)
                ]
                for index, evaluation in zip(missing, settled, strict=True):
                    results[index] = evaluation
            elif missing:
                items = [(i, user_points[i]) for i in missing]
                run = self.backend.run(self.fun, items, self.policy.timeout)
                try:
                    for index, outcome in run:
                        made += 1
                        evaluation = self._settle_and_record(
                            outcome,
                            user_points[index],
                            done,
                            first + index,
                            hashes[index] if hashes else "",
                            kind,
                        )
                        results[index] = evaluation
                        if evaluation.action != "skipped":
                            done.append((user_points[index], evaluation.value))
                except BaseException:
                    made += self.backend.abandon()
                    raise
                finally:
                    run.close()
        finally:
            self.calls += count - len(missing) + made
            self.counts.retries += self.backend.retries - retries_before

        if self.vectorized and missing and self.journal is not None:
            for index in missing:
                evaluation = results[index]
                assert evaluation is not None
                self.journal.record(first + index, hashes[index], kind, evaluation)
        evaluations = [r for r in results if r is not None]
        values = torch.tensor([e.value for e in evaluations], dtype=torch.float64)
        return values, evaluations

    def _call_vectorized(self, user_points: Any, missing: list[int]) -> list[Outcome]:
        batch = user_points[missing] if len(missing) < len(user_points) else user_points
        start = time.perf_counter()
        try:
            raw = call_with_timeout(self.fun, batch, self.policy.timeout)
        except EvaluationTimeoutError as error:
            return [Outcome(TIMEOUT, math.nan, error, time.perf_counter() - start)] * len(missing)
        except Exception as error:
            if self.policy.on_error == "raise":
                attach_point(error, batch, [])
                raise
            return [Outcome(ERROR, math.nan, error, time.perf_counter() - start)] * len(missing)
        seconds = (time.perf_counter() - start) / len(missing)
        values = to_values(raw, len(missing), "fun")
        return [Outcome(OK, float(v), None, seconds) for v in values]

    def _settle_and_record(
        self,
        outcome: Outcome,
        point: Any,
        done: list[tuple[Any, float]],
        seq: int,
        digest: str,
        kind: str,
    ) -> Evaluation:
        """Settle one outcome and record it under ``seq`` and the point's ``digest``."""
        try:
            evaluation = self._settle(outcome, point, done)
        except Exception as error:
            if self.journal is not None and outcome.status != INVALID:
                raised = Evaluation(
                    _status(outcome, self._dtype),
                    outcome.value,
                    math.nan,
                    "raised",
                    _describe(error),
                    outcome.seconds,
                )
                self.journal.record(seq, digest, kind, raised)
            raise
        if self.journal is not None:
            self.journal.record(seq, digest, kind, evaluation)
        return evaluation

    def _settle(self, outcome: Outcome, point: Any, done: list[tuple[Any, float]]) -> Evaluation:
        """Apply the failure policy to one outcome; raise under a ``"raise"`` policy."""
        status = _status(outcome, self._dtype)
        if outcome.status == INVALID:
            assert outcome.error is not None
            raise _invalid_return(outcome.error, point, done)
        if status == STATUS_OK:
            return Evaluation(status, outcome.value, outcome.value, "used", None, outcome.seconds)

        if status == STATUS_NONFINITE:
            option, policy = "on_nonfinite", self.policy.on_nonfinite
            failure = f"`fun` returned {outcome.value}"
            if math.isfinite(outcome.value):
                failure += f" (beyond the range of {self._dtype}, the optimizer's dtype)"
            message = f"{failure} at x={short_repr(point, 200)}"
            if policy == "raise":
                message += "; pass on_nonfinite='skip' or 'penalty' to continue past such values"
            error: BaseException = NonFiniteObjectiveError(message)
        else:
            option, policy = "on_error", self.policy.on_error
            assert outcome.error is not None
            error = outcome.error
            failure = _describe_failure(status, error)
        self._count_failure(status)
        if policy == "raise":
            attach_point(error, point, done)
            raise error
        self._log_failure(failure, point, option, policy)
        if policy == "penalty":
            self.counts.penalized += 1
            penalty = float(self.policy.penalty)  # type: ignore[arg-type]
            return Evaluation(
                status, outcome.value, penalty, "penalized", _describe(error), outcome.seconds
            )
        if status != STATUS_NONFINITE:
            self.counts.skipped += 1
        # A skipped value reaches the optimizer as NaN (or the returned ±inf), which it drops.
        # A number beyond the range of the dtype reaches it as the ±inf that the cast makes.
        passed_value = math.nan
        if status == STATUS_NONFINITE:
            passed_value = outcome.value
            if math.isfinite(passed_value):
                passed_value = math.copysign(math.inf, passed_value)
        return Evaluation(
            status, outcome.value, passed_value, "skipped", _describe(error), outcome.seconds
        )

    def _count_failure(self, status: str) -> None:
        if status == STATUS_NONFINITE:
            self.counts.nonfinite += 1
        elif status == TIMEOUT:
            self.counts.timeouts += 1
        elif status == LOST:
            self.counts.lost += 1
        else:
            self.counts.errors += 1

    def _count(self, evaluation: Evaluation) -> None:
        """Count a replayed evaluation as if it had just been made."""
        if evaluation.status == STATUS_OK:
            return
        self._count_failure(evaluation.status)
        if evaluation.action == "penalized":
            self.counts.penalized += 1
        elif evaluation.action == "skipped" and evaluation.status != STATUS_NONFINITE:
            self.counts.skipped += 1

    def _log_failure(self, failure: str, point: Any, option: str, policy: str) -> None:
        """Log what failed at ``point`` and what the policy chosen with ``option`` did."""
        self._failures_logged += 1
        level = logging.WARNING if self._failures_logged <= _LOGGED_FAILURES else logging.DEBUG
        if policy == "skip":
            action = "skipped the point"
        else:
            action = f"assigned the penalty {float(self.policy.penalty)}"  # type: ignore[arg-type]
        logger.log(
            level,
            "%s at x=%s; %s (%s=%r)",
            failure,
            short_repr(point, 120),
            action,
            option,
            policy,
        )
        if self._failures_logged == _LOGGED_FAILURES:
            logger.warning(
                "%d evaluations failed; further failures are logged at DEBUG level",
                _LOGGED_FAILURES,
            )


def _status(outcome: Outcome, dtype: torch.dtype) -> str:
    """Return the evaluation status; a value that is not finite in ``dtype`` is non-finite."""
    if outcome.status == OK:
        return STATUS_OK if is_finite_in(outcome.value, dtype) else STATUS_NONFINITE
    return outcome.status


def _invalid_return(
    error: BaseException, point: Any, done: list[tuple[Any, float]]
) -> BaseException:
    """Return ``error`` (``fun`` returned a non-number) with the point in its message and the
    point and the batch's finished evaluations attached, as ``attach_point`` does."""
    try:
        described = type(error)(f"{error} at x={short_repr(point, 200)}")
    except Exception:  # an exception type that takes other arguments
        described = error
    described.zerograds_point = point  # type: ignore[attr-defined]
    described.zerograds_evaluated = list(done)  # type: ignore[attr-defined]
    return described


def _describe_failure(status: str, error: BaseException) -> str:
    """Describe an exception, timeout or lost worker for the log, without the point."""
    if status == TIMEOUT:
        return str(error)  # "the objective did not return within timeout=... s"
    if status == LOST:
        return _describe(error)  # a WorkerLostError that names the lost worker or task
    return f"`fun` raised {short_repr(error, 200)}"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
