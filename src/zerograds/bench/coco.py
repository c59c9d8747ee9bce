"""Post-processing of the COCO logs with ``cocopp``, offline.

cocopp 2.9.1 ships the reference data sets it compares with inside the package
(``cocopp/refalgs``): ``best2009-bbob.tar.gz``, which it uses for ``bbob`` by itself, and
``best2019-bbob-largescale.tar.gz``, which its ``bbob-largescale`` settings do not name, so it is
passed here as one more algorithm. Nothing is downloaded: data sets named by an archive name
would be, so only local folders and files are passed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

REFERENCE_ARCHIVES = {
    "bbob": "best2009-bbob.tar.gz",
    "bbob-largescale": "best2019-bbob-largescale.tar.gz",
}


def reference_archive(suite: str) -> Path | None:
    """Return the path of the reference data set that cocopp ships for ``suite``, if any."""
    import cocopp

    path = Path(cocopp.__file__).parent / "refalgs" / REFERENCE_ARCHIVES.get(suite, "")
    return path if path.is_file() else None


def run_cocopp(
    out_dir: Path,
    benchmark: str,
    suite: str,
    optimizers: list[str],
    dims: list[int],
    dest: Path,
) -> list[Path]:
    """Run cocopp on the logs of ``benchmark`` and return the ECDF figures it drew.

    Args:
        out_dir: the folder given to ``zerograds bench --out``; logs are under
            ``out_dir/exdata/<benchmark>/<optimizer>``.
        benchmark: benchmark name.
        suite: ``"bbob"`` or ``"bbob-largescale"``.
        optimizers: the optimizers to include (those with logs).
        dims: the dimensions of the benchmark's problems.
        dest: cocopp's output folder; it is replaced.

    Returns:
        The paths of cocopp's ``pprldmany`` ECDF figures over all functions, one for each of
        ``dims``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cocopp warns that it cannot reach its online archive
        import cocopp

    logs = Path(out_dir) / "exdata" / benchmark
    folders = [logs / name for name in optimizers if (logs / name).is_dir()]
    if not folders:
        return []
    inputs = [str(folder) for folder in folders]
    if suite == "bbob-largescale":
        archive = reference_archive(suite)
        if archive is not None:
            # A copy, because cocopp unpacks an archive next to it.
            local = Path(out_dir) / "refalgs" / archive.name
            local.parent.mkdir(parents=True, exist_ok=True)
            if not local.exists():
                shutil.copy(archive, local)
            inputs.append(str(local))
    shutil.rmtree(dest, ignore_errors=True)
    cocopp.genericsettings.interactive_mode = False
    cocopp.genericsettings.figure_file_formats = ["png"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cocopp.main(["-o", str(dest), *inputs])
    logger.debug("cocopp output:\n%s", output.getvalue())
    # cocopp draws one figure per dimension of the reference data; keep those of our runs.
    names = {f"pprldmany_{dim:02d}D_noiselessall.png" for dim in dims}
    return sorted(path for path in Path(dest).rglob("pprldmany_*.png") if path.name in names)
