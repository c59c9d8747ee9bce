"""Parallel evaluation: local pools, executors and Dask give the serial run's result."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import zerograds as zg
from zerograds.parallel import make_backend

try:
    import cloudpickle

    # Worker processes cannot import this test module, so its functions travel by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover - cloudpickle ships with dask
    pass

try:
    import distributed
except ImportError:  # pragma: no cover
    distributed = None

SETTINGS = {"sigma": 0.5, "max_evals": 81, "seed": 3}


def quadratic(x: np.ndarray) -> float:
    return float(np.sum((x - 1.5) ** 2))


def quadratic_killing_once(x: np.ndarray, flag: str) -> float:
    """Kill the calling process the first time it finds ``flag``; the file is removed first,
    so only one call dies."""
    if os.path.exists(flag):
        try:
            os.remove(flag)
        except FileNotFoundError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return quadratic(x)


def flag_at_iteration(flag: Path, iteration: int):
    def callback(optimizer: zg.ZeroGrads, entry: zg.HistoryEntry) -> None:
        if optimizer.iteration == iteration:
            flag.touch()

    return callback


@pytest.fixture(scope="module")
def serial() -> zg.OptimizeResult:
    return zg.minimize(quadratic, np.zeros(3), **SETTINGS)


def assert_same_run(result: zg.OptimizeResult, reference: zg.OptimizeResult) -> None:
    assert np.array_equal(result.x, reference.x)
    assert result.fun == reference.fun
    assert result.best_fun == reference.best_fun
    assert result.nfev == reference.nfev
    assert result.nit == reference.nit


def test_process_pool_matches_serial(serial: zg.OptimizeResult) -> None:
    result = zg.minimize(quadratic, np.zeros(3), workers=2, **SETTINGS)
    assert_same_run(result, serial)


def test_thread_pool_matches_serial(serial: zg.OptimizeResult) -> None:
    result = zg.minimize(quadratic, np.zeros(3), workers=2, executor="thread", **SETTINGS)
    assert_same_run(result, serial)


def test_user_executor_matches_serial(serial: zg.OptimizeResult) -> None:
    with cf.ThreadPoolExecutor(3) as pool:
        result = zg.minimize(quadratic, np.zeros(3), executor=pool, **SETTINGS)
    assert_same_run(result, serial)


def test_lambda_on_process_pool(serial: zg.OptimizeResult) -> None:
    result = zg.minimize(
        lambda x: float(np.sum((x - 1.5) ** 2)), np.zeros(3), workers=2, **SETTINGS
    )
    assert_same_run(result, serial)


def test_killed_pool_worker_retried(serial: zg.OptimizeResult, tmp_path: Path) -> None:
    flag = tmp_path / "kill"
    fun = functools.partial(quadratic_killing_once, flag=str(flag))
    result = zg.minimize(
        fun, np.zeros(3), workers=2, callback=flag_at_iteration(flag, 4), **SETTINGS
    )
    assert not flag.exists()
    assert result.n_retries >= 1
    assert result.n_lost == 0
    assert_same_run(result, serial)


def test_workers_with_vectorized_rejected() -> None:
    with pytest.raises(ValueError, match=r"`vectorized`=True .* cannot be combined"):
        zg.minimize(lambda X: (X**2).sum(1), np.zeros(2), vectorized=True, workers=2)


def test_backend_options_rejected() -> None:
    with pytest.raises(ValueError, match=r"`executor`='thread' starts a local pool"):
        make_backend(None, "thread")
    with pytest.raises(ValueError, match=r"`executor` must be None, 'process', 'thread'"):
        make_backend(2, "gpu")
    with pytest.raises(TypeError, match=r"`executor` must be None"):
        make_backend(None, object())
    with pytest.raises(ValueError, match=r"`workers` must be an integer >= 1"):
        make_backend(0, None)
    with cf.ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match=r"cannot be combined"):
        make_backend(2, pool)


def test_unpicklable_objective_message() -> None:
    import threading

    lock = threading.Lock()

    def holds_lock(x: np.ndarray) -> float:
        with lock:
            return quadratic(x)

    with pytest.raises(TypeError, match=r"`fun` cannot be pickled for worker processes"):
        zg.minimize(holds_lock, np.zeros(2), workers=2, max_evals=9, seed=0)


@pytest.fixture(scope="module")
def dask_client():
    if distributed is None:
        pytest.skip("dask.distributed is not installed (pip install 'zerograds[distributed]')")
    cluster = distributed.LocalCluster(
        host="127.0.0.1",
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_matches_serial(dask_client, serial: zg.OptimizeResult) -> None:
    result = zg.minimize(quadratic, np.zeros(3), executor=dask_client, **SETTINGS)
    assert_same_run(result, serial)


def test_dask_killed_worker_same_result(
    dask_client, serial: zg.OptimizeResult, tmp_path: Path
) -> None:
    flag = tmp_path / "kill"
    fun = functools.partial(quadratic_killing_once, flag=str(flag))
    workers_before = set(dask_client.scheduler_info()["workers"])
    result = zg.minimize(
        fun, np.zeros(3), executor=dask_client, callback=flag_at_iteration(flag, 4), **SETTINGS
    )
    assert not flag.exists()  # a worker found the flag and killed itself
    dask_client.wait_for_workers(2, timeout=60)
    assert set(dask_client.scheduler_info()["workers"]) != workers_before
    assert_same_run(result, serial)
