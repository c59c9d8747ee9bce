"""Backends that evaluate a batch of points: in this process, on a local pool, or on any
``concurrent.futures.Executor`` or Dask ``distributed.Client``.

Every backend runs the same worker-side function, ``evaluate_point`` (from
``zerograds._worker``), which never raises for
a failure of the objective: it returns an ``Outcome`` (status, value, error, seconds), so that
the caller can tell a failing objective apart from a failing worker. A backend yields
``(index, outcome)`` pairs in completion order; ``Evaluator`` puts them back in point order.

A worker that dies (``BrokenProcessPool`` for a local process pool, ``KilledWorker`` for
Dask) loses the evaluations it was running. The backend submits those points again, up to
``max_retries`` times each, and reports each point once, so nothing is lost or counted twice.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from ._validation import check_int, short_repr
from ._worker import LOST, Outcome, PortableFunction, evaluate_point
from .exceptions import WorkerLostError

logger = logging.getLogger(__name__)

WORKER_KINDS = ("process", "thread")


class Backend:
    """Evaluates points and yields ``(index, Outcome)`` pairs in completion order."""

    retries = 0

    def run(
        self, fun: Callable[[Any], Any], items: list[tuple[int, Any]], timeout: float | None
    ) -> Iterator[tuple[int, Outcome]]:
        raise NotImplementedError

    def abandon(self) -> int:
        """Cancel the evaluations not yet reported; return how many had already started."""
        return 0

    def close(self) -> None:
        """Release the workers that this backend started."""


class SerialBackend(Backend):
    """Evaluates one point after the other in this process."""

    def run(
        self, fun: Callable[[Any], Any], items: list[tuple[int, Any]], timeout: float | None
    ) -> Iterator[tuple[int, Outcome]]:
        for index, point in items:
            yield index, evaluate_point(fun, point, timeout)


class ExecutorBackend(Backend):
    """Evaluates points on a ``concurrent.futures.Executor``.

    Args:
        executor: the user's executor, or ``None`` to start a local pool.
        workers: size of the local pool.
        kind: ``"process"`` or ``"thread"``, the local pool's kind.
        max_retries: how many times a point is submitted again after its worker died.
    """

    def __init__(
        self,
        executor: cf.Executor | None = None,
        *,
        workers: int = 1,
        kind: str = "process",
        max_retries: int = 3,
    ) -> None:
        self._owned = executor is None
        self._workers = workers
        self._kind = kind
        self._max_retries = max_retries
        self._executor = executor if executor is not None else self._start_pool()
        self._pending: dict[Any, int] = {}
        self.retries = 0

    def _start_pool(self) -> cf.Executor:
        if self._kind == "thread":
            return cf.ThreadPoolExecutor(self._workers, thread_name_prefix="zerograds")
        # forkserver, because a forked child of a process that has used torch's OpenMP
        # threads can deadlock in its first parallel torch call.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return cf.ProcessPoolExecutor(self._workers, mp_context=context)

    @property
    def sends_pickles(self) -> bool:
        """Whether tasks cross a process boundary (then ``fun`` must pickle)."""
        return not isinstance(self._executor, cf.ThreadPoolExecutor)

    def run(
        self, fun: Callable[[Any], Any], items: list[tuple[int, Any]], timeout: float | None
    ) -> Iterator[tuple[int, Outcome]]:
        task = PortableFunction(fun) if self.sends_pickles else fun
        if isinstance(task, PortableFunction):
            task.payload()  # raise a clear TypeError before anything is submitted
        points = dict(items)
        attempts = dict.fromkeys(points, 0)
        self._pending = {self._submit(task, points[i], timeout): i for i in points}
        while self._pending:
            done, _ = cf.wait(self._pending, return_when=cf.FIRST_COMPLETED)
            lost: list[int] = []
            for future in done:
                index = self._pending.pop(future)
                try:
                    outcome = future.result()
                except cf.BrokenExecutor as error:
                    lost.append(index)
                    broken = error
                    continue
                yield index, outcome
            if not lost:
                continue

            # A broken pool fails every task that it still holds, so all of them are lost.
            lost += list(self._pending.values())
            self._pending = {}
            if not self._owned:
                raise WorkerLostError(
                    f"a worker of the executor {short_repr(self._executor)} died and the "
                    f"executor is broken ({broken}); pass workers=N instead, so that zerograds "
                    "can restart its own pool"
                ) from broken
            logger.warning(
                "a worker process died while evaluating points %s; restarting the pool of %d "
                "workers and submitting them again",
                sorted(lost),
                self._workers,
            )
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start_pool()
            for index in sorted(lost):
                attempts[index] += 1
                if attempts[index] > self._max_retries:
                    error = WorkerLostError(
                        f"the worker evaluating point {index} died {attempts[index]} times"
                    )
                    yield index, Outcome(LOST, math.nan, error, 0.0)
                    continue
                self.retries += 1
                self._pending[self._submit(task, points[index], timeout)] = index

    def _submit(self, task: Callable[[Any], Any], point: Any, timeout: float | None) -> Any:
        try:
            return self._executor.submit(evaluate_point, task, point, timeout, self.sends_pickles)
        except cf.BrokenExecutor:
            # submit() raises when a worker died after the last batch had been collected, so
            # the break was never seen through a future. Our own pool is restarted once.
            if not self._owned:
                raise
            logger.warning("the worker pool was broken before a submission; restarting it")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start_pool()
            return self._executor.submit(evaluate_point, task, point, timeout, self.sends_pickles)

    def abandon(self) -> int:
        started = sum(0 if future.cancel() else 1 for future in self._pending)
        self._pending = {}
        return started

    def close(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True, cancel_futures=True)


class DaskBackend(Backend):
    """Evaluates points on a Dask ``distributed.Client``.

    The scheduler already runs a task again when its worker dies, up to its
    ``allowed-failures`` setting; after that the task fails with ``KilledWorker`` and this
    backend submits it again, up to ``max_retries`` times.
    """

    def __init__(self, client: Any, *, max_retries: int = 3) -> None:
        self._client = client
        self._max_retries = max_retries
        self._pending: dict[Any, int] = {}
        self.retries = 0

    def run(
        self, fun: Callable[[Any], Any], items: list[tuple[int, Any]], timeout: float | None
    ) -> Iterator[tuple[int, Outcome]]:
        from distributed import as_completed

        try:
            from distributed import KilledWorker
        except ImportError:  # older releases keep it in the scheduler module
            from distributed.scheduler import KilledWorker

        points = dict(items)
        attempts = dict.fromkeys(points, 0)
        self._pending = {self._submit(fun, points[i], timeout): i for i in points}
        completed = as_completed(list(self._pending))
        for future in completed:
            index = self._pending.pop(future)
            try:
                outcome = future.result()
            except KilledWorker as error:
                attempts[index] += 1
                if attempts[index] > self._max_retries:
                    yield index, Outcome(LOST, math.nan, WorkerLostError(str(error)), 0.0)
                    continue
                logger.warning(
                    "Dask workers died while evaluating point %d (%s); submitting it again",
                    index,
                    error,
                )
                self.retries += 1
                retry = self._submit(fun, points[index], timeout)
                self._pending[retry] = index
                completed.add(retry)
                continue
            yield index, outcome

    def _submit(self, fun: Callable[[Any], Any], point: Any, timeout: float | None) -> Any:
        return self._client.submit(evaluate_point, fun, point, timeout, True, pure=False)

    def abandon(self) -> int:
        # NOTE: Dask does not tell whether a pending task has started, so abandoned tasks
        # are not counted as calls of the objective.
        self._client.cancel(list(self._pending))
        self._pending = {}
        return 0


def is_dask_client(executor: Any) -> bool:
    """Return whether ``executor`` is a Dask ``distributed.Client``, without importing
    distributed)."""
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "gather")


def make_backend(workers: Any, executor: Any, max_retries: int = 3) -> Backend:
    """Build the backend for the ``workers`` and ``executor`` options of ``minimize``.

    Args:
        workers: ``None`` or a number of local workers >= 1.
        executor: ``None``, ``"process"``, ``"thread"``, a ``concurrent.futures.Executor`` or
            a Dask ``distributed.Client``.
        max_retries: submissions of a point again after its worker died.

    Raises:
        TypeError, ValueError: invalid ``workers`` or ``executor``.
    """
    if workers is not None:
        workers = check_int("workers", workers, 1)
    if executor is None or isinstance(executor, str):
        kind = "process" if executor is None else executor
        if kind not in WORKER_KINDS:
            raise ValueError(
                "`executor` must be None, 'process', 'thread', a concurrent.futures.Executor "
                f"or a distributed.Client, got {short_repr(executor)}"
            )
        if workers is None:
            if executor is not None:
                raise ValueError(
                    f"`executor`={executor!r} starts a local pool and needs `workers`=N, "
                    "got workers=None"
                )
            return SerialBackend()
        return ExecutorBackend(workers=workers, kind=kind, max_retries=max_retries)
    if workers is not None:
        raise ValueError(
            "`workers` sets the size of a local pool and cannot be combined with an executor "
            f"instance, got workers={workers} and executor={short_repr(executor)}"
        )
    if is_dask_client(executor):
        return DaskBackend(executor, max_retries=max_retries)
    if isinstance(executor, cf.Executor):
        return ExecutorBackend(executor, max_retries=max_retries)
    raise TypeError(
        "`executor` must be None, 'process', 'thread', a concurrent.futures.Executor or a "
        f"distributed.Client, got {short_repr(executor)}"
    )
