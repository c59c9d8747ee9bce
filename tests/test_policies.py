"""Failure policies: raise, skip and penalty for exceptions, timeouts and non-finite values."""

from __future__ import annotations

import logging
import math
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import zerograds as zg

SETTINGS = {"sigma": 1.0, "max_evals": 81, "seed": 5}


class Flaky(RuntimeError):
    pass


def raises_right(x: np.ndarray) -> float:
    """Fails on the half-space x[0] > 0.5, which the optimizer samples often from 0."""
    if x[0] > 0.5:
        raise Flaky(f"cannot evaluate at {x[0]:.3f}")
    return float(np.sum((x + 1.0) ** 2))


def nan_right(x: np.ndarray) -> float:
    return math.nan if x[0] > 0.5 else float(np.sum((x + 1.0) ** 2))


def slow_right(x: np.ndarray) -> float:
    if x[0] > 0.5:
        time.sleep(2.0)
    return float(np.sum((x + 1.0) ** 2))


def test_on_error_raise_propagates() -> None:
    with pytest.raises(Flaky, match="cannot evaluate") as info:
        zg.minimize(raises_right, np.zeros(2), **SETTINGS)
    assert info.value.zerograds_point[0] > 0.5


def test_on_error_raise_from_process_pool() -> None:
    with pytest.raises(Flaky, match="cannot evaluate") as info:
        zg.minimize(raises_right, np.zeros(2), workers=2, **SETTINGS)
    assert info.value.zerograds_point[0] > 0.5
    assert any("traceback in the worker" in note for note in info.value.__notes__)


def test_on_error_skip_counts_failures(caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", zg.NumericsWarning)
        with caplog.at_level(logging.WARNING, logger="zerograds"):
            result = zg.minimize(raises_right, np.zeros(2), on_error="skip", **SETTINGS)
    assert result.n_errors > 0
    assert result.n_skipped == result.n_errors
    assert result.n_nonfinite == 0
    assert result.n_penalized == 0
    assert result.nfev == SETTINGS["max_evals"]
    assert result.best_fun < 2.0
    assert "`fun` raised Flaky('cannot evaluate at " in caplog.text
    assert "; skipped the point (on_error='skip')" in caplog.text


def test_on_error_penalty_replaces_value() -> None:
    seen: list[float] = []

    def record(optimizer: zg.ZeroGrads, entry: zg.HistoryEntry) -> None:
        seen.append(entry.fun_mean)

    result = zg.minimize(
        raises_right, np.zeros(2), on_error="penalty", penalty=100.0, callback=record, **SETTINGS
    )
    assert result.n_errors > 0
    assert result.n_penalized == result.n_errors
    assert result.n_skipped == 0
    assert max(seen) > 20.0  # penalties entered the batch means


def test_on_nonfinite_raise() -> None:
    advice = r"; pass on_nonfinite='skip' or 'penalty' to continue past such values$"
    with pytest.raises(zg.NonFiniteObjectiveError, match=r"^`fun` returned nan at x=.*" + advice):
        zg.minimize(nan_right, np.zeros(2), on_nonfinite="raise", **SETTINGS)


def test_on_nonfinite_raise_adds_no_raised_note() -> None:
    """The error names x itself; a note saying that the objective raised would be false."""
    with pytest.raises(zg.NonFiniteObjectiveError) as caught:
        zg.minimize(nan_right, np.zeros(2), on_nonfinite="raise", **SETTINGS)
    assert not any("raised" in note for note in getattr(caught.value, "__notes__", []))
    assert caught.value.zerograds_point is not None


def test_vectorized_nonfinite_names_its_row() -> None:
    def first_row_nan(points: torch.Tensor) -> torch.Tensor:
        values = (points**2).sum(dim=1)
        values[0] = math.nan
        return values

    with pytest.raises(zg.NonFiniteObjectiveError) as caught:
        zg.minimize(
            first_row_nan, torch.zeros(3), vectorized=True, on_nonfinite="raise", **SETTINGS
        )
    assert tuple(caught.value.zerograds_point.shape) == (3,)
    assert re.search(r"x=tensor\(\[[^\]]*\]\)", str(caught.value))


def test_on_nonfinite_skip_counts_nonfinite() -> None:
    with pytest.warns(zg.NumericsWarning, match="not finite"):
        result = zg.minimize(nan_right, np.zeros(2), **SETTINGS)
    assert result.n_nonfinite > 0
    assert result.n_errors == 0
    assert result.n_skipped == 0


def test_on_nonfinite_penalty() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", zg.NumericsWarning)
        result = zg.minimize(
            nan_right, np.zeros(2), on_nonfinite="penalty", penalty=50.0, **SETTINGS
        )
    assert result.n_nonfinite > 0
    assert result.n_penalized == result.n_nonfinite


def test_on_nonfinite_penalty_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="zerograds"):
        zg.minimize(nan_right, np.zeros(2), on_nonfinite="penalty", penalty=50, **SETTINGS)

    failures = [r.getMessage() for r in caplog.records if "`fun` returned" in r.getMessage()]
    assert failures
    line = r"^`fun` returned nan at x=array\(\[[^]]*\]\); assigned the penalty 50\.0 "
    for message in failures:
        assert re.match(line + r"\(on_nonfinite='penalty'\)$", message), message
        assert message.count("x=") == 1, message
        assert "pass on_nonfinite" not in message, message


def test_penalized_nonfinite_stored_without_advice(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    result = zg.minimize(
        nan_right, np.zeros(2), on_nonfinite="penalty", penalty=50.0, storage=db, **SETTINGS
    )
    with zg.RunStore(db) as store:
        rows = store.evaluations(result.run_id)

    errors = [row["error"] for row in rows if row["action"] == "penalized"]
    assert len(errors) == result.n_penalized > 0
    # The advice to pass on_nonfinite belongs only to the error raised under "raise".
    for error in errors:
        assert re.match(r"^NonFiniteObjectiveError: `fun` returned nan at x=array\(.*\)$", error)


def boom(x: np.ndarray) -> float:
    raise RuntimeError("boom")


def test_on_error_skip_every_point_raising() -> None:
    expected = (
        r"^every point of the last 10 batches failed: 80 raised an exception "
        r"\(last: RuntimeError: boom\); check `fun` near θ=array\(\[0\., 0\.\]"
    )
    with (
        warnings.catch_warnings(),
        pytest.raises(zg.NonFiniteObjectiveError, match=expected) as info,
    ):
        warnings.simplefilter("ignore", zg.NumericsWarning)
        zg.minimize(boom, np.zeros(2), on_error="skip", **SETTINGS)
    assert "returned no finite value" not in str(info.value)


def test_skip_mixed_failures_described() -> None:
    def raises_or_nan(x: np.ndarray) -> float:
        if x[0] > 0.0:
            raise Flaky("solver diverged")
        return math.nan

    expected = (
        r"^every point of the last 3 batches failed: \d+ raised an exception "
        r"\(last: Flaky: solver diverged\), \d+ returned a non-finite value; check `fun` near"
    )
    with (
        warnings.catch_warnings(),
        pytest.raises(zg.NonFiniteObjectiveError, match=expected),
    ):
        warnings.simplefilter("ignore", zg.NumericsWarning)
        zg.minimize(
            raises_or_nan, np.zeros(2), on_error="skip", max_nonfinite_iterations=3, **SETTINGS
        )


def test_timeout_skip_every_point_described() -> None:
    expected = r"^every point of the last 2 batches failed: 4 timed out; check `fun` near θ="
    with (
        warnings.catch_warnings(),
        pytest.raises(zg.NonFiniteObjectiveError, match=expected),
    ):
        warnings.simplefilter("ignore", zg.NumericsWarning)
        zg.minimize(
            lambda x: time.sleep(2.0),
            np.zeros(2),
            on_error="skip",
            timeout=0.05,
            batch_size=1,
            max_nonfinite_iterations=2,
            **SETTINGS,
        )


def test_timeout_skip_serial() -> None:
    start = time.perf_counter()
    result = zg.minimize(
        slow_right, np.zeros(2), on_error="skip", timeout=0.05, sigma=1.0, max_evals=21, seed=5
    )
    assert result.n_timeouts > 0
    assert result.n_skipped == result.n_timeouts
    assert time.perf_counter() - start < 0.2 * result.n_timeouts + 5.0


def test_timeout_raise_thread_pool() -> None:
    with pytest.raises(zg.EvaluationTimeoutError, match=r"timeout=0.05 s") as info:
        zg.minimize(slow_right, np.zeros(2), workers=2, executor="thread", timeout=0.05, **SETTINGS)
    assert info.value.zerograds_point[0] > 0.5


def test_policy_options_rejected() -> None:
    f = raises_right
    with pytest.raises(ValueError, match=r"`on_error` must be one of 'raise', 'skip', 'penalty'"):
        zg.minimize(f, np.zeros(2), on_error="ignore")
    with pytest.raises(ValueError, match=r"`penalty` must be a finite number when"):
        zg.minimize(f, np.zeros(2), on_error="penalty")
    with pytest.raises(ValueError, match=r"`penalty` applies only with"):
        zg.minimize(f, np.zeros(2), penalty=1.0)
    with pytest.raises(ValueError, match=r"`penalty` must be finite, got inf"):
        zg.minimize(f, np.zeros(2), on_nonfinite="penalty", penalty=math.inf)
    with pytest.raises(ValueError, match=r"`timeout` must be a finite number > 0, got 0"):
        zg.minimize(f, np.zeros(2), timeout=0)
