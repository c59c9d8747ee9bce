"""The worker side of the evaluation backends: one call of the objective, described as data.

``evaluate_point`` runs on whichever worker a backend of ``zerograds.parallel`` picks (this
process, a pool process or thread, or a Dask worker). It never raises for a failure of the
objective but returns an ``Outcome``, so that the caller can tell a failing objective apart
from a failing worker. ``PortableFunction`` lets the objective travel to worker processes.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._validation import to_value
from .exceptions import EvaluationTimeoutError

# Outcome statuses. "invalid" means ``fun`` returned something that is not a number, which is
# a programming error and is raised whatever the failure policy.
OK, ERROR, TIMEOUT, LOST, INVALID = "ok", "error", "timeout", "lost", "invalid"


@dataclass(frozen=True)
class Outcome:
    """Result of one call of the objective.

    Attributes:
        status: ``"ok"`` (``value`` contains the number, finite or not), ``"error"`` (``fun``
            raised), ``"timeout"``, ``"lost"`` (its worker died ``max_retries + 1`` times) or
            ``"invalid"`` (``fun`` returned a non-number).
        value: the objective value; NaN unless ``status`` is ``"ok"``.
        error: the exception for every status except ``"ok"``.
        seconds: wall-clock seconds of the call, measured where it ran.
    """

    status: str
    value: float
    error: BaseException | None
    seconds: float


def call_with_timeout(fun: Callable[[Any], Any], point: Any, timeout: float | None) -> Any:
    """Call ``fun(point)``; raise ``EvaluationTimeoutError`` after ``timeout`` seconds.

    In the main thread of a process (serial runs, local process pools) a ``SIGALRM`` timer
    interrupts the call, so a timed-out evaluation stops. Elsewhere (thread pools, Dask
    workers) the call runs in a helper thread that is abandoned on timeout.
    """
    if timeout is None:
        return fun(point)
    message = f"the objective did not return within timeout={timeout} s"
    if _can_use_alarm():

        def on_alarm(signum: int, frame: Any) -> None:
            raise EvaluationTimeoutError(message)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fun(point)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            signal.signal(signal.SIGALRM, previous)

    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fun(point)
        except BaseException as error:
            result["error"] = error

    helper = threading.Thread(target=target, name="zerograds-evaluation", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive():
        # NOTE: Python cannot stop a thread, so the abandoned call keeps its CPU until it
        # returns by itself; its value is discarded.
        raise EvaluationTimeoutError(message)
    if "error" in result:
        raise result["error"]
    return result["value"]


def _can_use_alarm() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0
    )


def evaluate_point(
    fun: Callable[[Any], Any], point: Any, timeout: float | None, remote: bool = False
) -> Outcome:
    """Evaluate ``fun`` at one point and describe what happened; never raises for ``fun``'s
    errors.

    With ``remote=True`` the error gets its traceback as a note, because the traceback
    object does not survive pickling, and an error that cannot be pickled is replaced by a
    ``RuntimeError`` that carries its type, message and traceback.
    """
    start = time.perf_counter()
    try:
        raw = call_with_timeout(fun, point, timeout)
    except EvaluationTimeoutError as error:
        return Outcome(TIMEOUT, math.nan, error, time.perf_counter() - start)
    except Exception as error:
        seconds = time.perf_counter() - start
        return Outcome(ERROR, math.nan, _portable_error(error) if remote else error, seconds)
    seconds = time.perf_counter() - start
    try:
        value = to_value(raw, "fun")
    except (TypeError, ValueError) as error:
        return Outcome(INVALID, math.nan, error, seconds)
    return Outcome(OK, value, None, seconds)


def _portable_error(error: Exception) -> Exception:
    text = "".join(traceback.format_exception(error))
    try:
        error.add_note(f"traceback in the worker:\n{text}")
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"the objective raised an error that cannot be pickled:\n{text}")
    return error


_FUNCTION_CACHE: dict[str, Callable[[Any], Any]] = {}


class PortableFunction:
    """Wraps the objective so that it pickles by value (with cloudpickle when installed).

    Process pools pickle the callable of every task; plain ``pickle`` rejects lambdas and
    functions defined in ``__main__`` or in a test module. The pickled bytes are computed
    once, and each worker process unpickles a given function once.
    """

    def __init__(self, fun: Callable[[Any], Any]) -> None:
        self.fun = fun
        self._payload: bytes | None = None

    def __call__(self, point: Any) -> Any:
        return self.fun(point)

    def payload(self) -> bytes:
        """Return the pickled objective; raises ``TypeError`` when it cannot be pickled."""
        if self._payload is None:
            try:
                import cloudpickle

                self._payload = cloudpickle.dumps(self.fun)
            except ImportError:
                self._payload = pickle.dumps(self.fun)
            except Exception as error:
                raise TypeError(
                    f"`fun` cannot be pickled for worker processes ({error}); pass "
                    "executor='thread' or make the objective picklable"
                ) from error
        return self._payload

    def __getstate__(self) -> dict[str, Any]:
        return {"payload": self.payload()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        payload = state["payload"]
        key = hashlib.sha256(payload).hexdigest()
        fun = _FUNCTION_CACHE.get(key)
        if fun is None:
            fun = pickle.loads(payload)
            if len(_FUNCTION_CACHE) >= 8:
                _FUNCTION_CACHE.clear()
            _FUNCTION_CACHE[key] = fun
        self.fun = fun
        self._payload = payload
