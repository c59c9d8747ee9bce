"""Which stored run ``minimize(..., resume=True)`` continues, and the checks of ``storage``."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import zerograds as zg
from zerograds._failure_policy import FailurePolicy
from zerograds.storage import RunStore, describe_run


def quadratic(x: np.ndarray) -> float:
    return float(np.sum((x - 1.0) ** 2))


def shifted(shift: float) -> Callable[[np.ndarray], float]:
    """Return a closure whose code is the same for every ``shift``."""

    def objective(x: np.ndarray) -> float:
        return float(np.sum((x - shift) ** 2))

    return objective


def counting() -> Callable[[np.ndarray], float]:
    """Return a closure that counts its calls in a variable it assigns."""
    calls = 0

    def objective(x: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        return float(np.sum(x**2))

    return objective


def offset_sphere(x: np.ndarray, offset: float) -> float:
    return float(np.sum((x - offset) ** 2))


def fun_code(fun: Callable[..., float]) -> str | None:
    policy = FailurePolicy("raise", "skip", None, None)
    config = describe_run(fun, np.zeros(2), 0, {}, False, 0, policy)
    return config["trajectory"]["fun_code"]


# ---------------------------------------------------------------------- resume with seed=None


def test_resume_with_seed_none_continues_the_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    first = zg.minimize(quadratic, np.ones(3), max_evals=41, storage=db, resume=True)
    drawn = first.state["seed"]

    second = zg.minimize(quadratic, np.ones(3), max_evals=81, storage=db, resume=True)

    assert first.run_id == second.run_id == 1
    assert second.state["seed"] == drawn
    reference = zg.minimize(quadratic, np.ones(3), max_evals=81, seed=drawn)
    assert np.array_equal(second.x, reference.x)
    assert second.fun == reference.fun
    assert second.nfev == reference.nfev == 81
    with RunStore(db) as store:
        (run,) = store.list_runs()
    assert run.seed == drawn
    assert run.config["trajectory"]["seed"] is None


def test_seed_none_run_stores_drawn_seed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    first = zg.minimize(quadratic, np.ones(3), max_evals=21, storage=db)
    second = zg.minimize(quadratic, np.ones(3), max_evals=21, storage=db)

    with RunStore(db) as store:
        runs = store.list_runs()
    assert [run.id for run in runs] == [first.run_id, second.run_id] == [1, 2]
    assert [run.seed for run in runs] == [first.state["seed"], second.state["seed"]]
    assert [run.config["trajectory"]["seed"] for run in runs] == [None, None]


def test_resume_by_id_with_seed_none(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    first = zg.minimize(quadratic, np.ones(3), max_evals=21, storage=db)

    again = zg.minimize(quadratic, np.ones(3), max_evals=41, storage=db, resume=first.run_id)

    assert again.run_id == 1
    assert again.state["seed"] == first.state["seed"]
    assert again.nfev == 41


def test_explicit_seed_still_matches(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    zg.minimize(quadratic, np.ones(3), max_evals=21, seed=3, storage=db)

    same = zg.minimize(quadratic, np.ones(3), max_evals=21, seed=3, storage=db, resume=True)
    other = zg.minimize(quadratic, np.ones(3), max_evals=21, seed=4, storage=db, resume=True)

    assert (same.run_id, other.run_id) == (1, 2)
    assert same.state["seed"] == 3


# ---------------------------------------------------------------------- the objective's code


def test_different_lambdas_do_not_resume_each_other(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    x0 = np.ones(3)

    a = zg.minimize(
        lambda x: float(np.sum(x**2)), x0, max_evals=50, seed=0, storage=db, resume=True
    )
    b = zg.minimize(
        lambda x: float(np.sum((x - 5) ** 2)) + 1000.0,
        x0,
        max_evals=100,
        seed=0,
        storage=db,
        resume=True,
    )

    assert (a.run_id, b.run_id) == (1, 2)
    assert b.best_fun >= 1000.0
    assert b.nfev == 97


def test_same_function_object_resumes(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    def objective(x: np.ndarray) -> float:
        return float(np.sum(x**2))

    first = zg.minimize(objective, np.ones(3), max_evals=41, seed=0, storage=db, resume=True)
    second = zg.minimize(objective, np.ones(3), max_evals=81, seed=0, storage=db, resume=True)

    assert first.run_id == second.run_id == 1
    reference = zg.minimize(objective, np.ones(3), max_evals=81, seed=0)
    assert second.fun == reference.fun


def test_resume_by_id_with_other_lambda_rejected(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    zg.minimize(lambda x: float(np.sum(x**2)), np.ones(3), max_evals=21, seed=0, storage=db)

    with pytest.raises(ValueError, match=r"run 1 was started with other options: fun_code: '"):
        zg.minimize(
            lambda x: float(np.sum(x**4)), np.ones(3), max_evals=21, seed=0, storage=db, resume=1
        )


def test_closures_of_one_factory_differ_by_captured_value(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    options = dict(max_evals=21, seed=0, storage=db, resume=True)

    first = zg.minimize(shifted(1.0), np.ones(3), **options)
    second = zg.minimize(shifted(2.0), np.ones(3), **options)
    first_again = zg.minimize(shifted(1.0), np.ones(3), **options)

    assert (first.run_id, second.run_id, first_again.run_id) == (1, 2, 1)


def test_counting_closure_keeps_its_fingerprint(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    objective = counting()

    first = zg.minimize(objective, np.ones(3), max_evals=21, seed=0, storage=db, resume=True)
    second = zg.minimize(objective, np.ones(3), max_evals=41, seed=0, storage=db, resume=True)

    assert first.run_id == second.run_id == 1


def test_partial_arguments_enter_the_fingerprint(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    options = dict(max_evals=21, seed=0, storage=db, resume=True)

    first = zg.minimize(functools.partial(offset_sphere, offset=1.0), np.ones(3), **options)
    second = zg.minimize(functools.partial(offset_sphere, offset=2.0), np.ones(3), **options)
    first_again = zg.minimize(functools.partial(offset_sphere, offset=1.0), np.ones(3), **options)

    assert (first.run_id, second.run_id, first_again.run_id) == (1, 2, 1)


class Scaled:
    """A callable object."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, x: np.ndarray) -> float:
        return self.scale * float(np.sum(x**2))


def test_fun_code_values() -> None:
    digest = fun_code(quadratic)

    assert isinstance(digest, str) and len(digest) == 64
    assert fun_code(lambda x: float(np.sum(x**2))) == fun_code(lambda x: float(np.sum(x**2)))
    assert fun_code(lambda x: float(np.sum(x**2))) != fun_code(lambda x: float(np.sum(x**3)))
    assert fun_code(shifted(1.0)) != fun_code(shifted(2.0))
    assert fun_code(Scaled(1.0)) == fun_code(Scaled(2.0)) != fun_code(quadratic)
    assert fun_code(math.fsum) is None


SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    from zerograds._failure_policy import FailurePolicy
    from zerograds.storage import describe_run

    def factory(shift):
        return lambda x: float(np.sum((x - shift) ** 2)) if x[0] in {"a", "b", "c"} else 0.0

    policy = FailurePolicy("raise", "skip", None, None)
    config = describe_run(factory(np.arange(3.0)), np.zeros(2), None, {}, False, 0, policy)
    print(json.dumps(config["trajectory"]["fun_code"]))
    """
)


def test_fun_code_is_the_same_in_other_processes(tmp_path: Path) -> None:
    """The hash must not depend on the hash seed of strings or on object ids."""
    script = tmp_path / "digest.py"
    script.write_text(SCRIPT)
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        output = subprocess.run(
            [sys.executable, str(script)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        digests.append(json.loads(output.stdout.strip().splitlines()[-1]))

    assert digests[0] == digests[1]
    assert isinstance(digests[0], str) and len(digests[0]) == 64


# ---------------------------------------------------------------------- checks of `storage`


def test_storage_of_wrong_type_rejected() -> None:
    with pytest.raises(
        TypeError,
        match=r"`storage` must be a path \(str or os\.PathLike\) or a zerograds\.RunStore, got 3",
    ):
        zg.minimize(quadratic, np.ones(3), max_evals=21, storage=3)  # type: ignore[arg-type]


def test_closed_store_rejected(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = RunStore(db)
    store.close()

    assert store.closed
    with pytest.raises(zg.StorageError, match=r"the RunStore of .*runs\.db is closed; open it"):
        zg.minimize(quadratic, np.ones(3), max_evals=21, storage=store)
    with pytest.raises(zg.StorageError, match=r"is closed"):
        store.list_runs()


@pytest.mark.parametrize("value", [math.nan, -1.0, 0.0, math.inf])
def test_stale_after_must_be_positive(tmp_path: Path, value: float) -> None:
    with pytest.raises(
        ValueError, match=rf"`stale_after` must be a finite number > 0, got {value!r}"
    ):
        RunStore(tmp_path / "runs.db", stale_after=value)
    assert not (tmp_path / "runs.db").exists()


def test_stale_after_must_be_a_number(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"`stale_after` must be a real number, got '60'"):
        RunStore(tmp_path / "runs.db", stale_after="60")  # type: ignore[arg-type]


def test_directory_as_storage_rejected(tmp_path: Path) -> None:
    with pytest.raises(
        zg.StorageError,
        match=r"cannot use .* as the run database: it is a directory; pass the path of a file "
        r"in it, such as .*runs\.db",
    ):
        zg.minimize(quadratic, np.ones(3), max_evals=21, storage=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_store_path_of_wrong_type_rejected() -> None:
    with pytest.raises(
        TypeError, match=r"`path` must be a str or os\.PathLike naming the run database, got 3"
    ):
        RunStore(3)  # type: ignore[arg-type]
