"""The Markdown report of a suite: machine, settings, figures and ranking tables.

``write_report`` replaces the part of ``docs/benchmarks.md`` between the markers
``<!-- bench:<suite>:begin -->`` and ``<!-- bench:<suite>:end -->`` and leaves the hand-written
text around them alone. A file without the markers gets the block appended.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .analysis import TARGETS, compare_with_peers, mean_ranks, target_table
from .optimizers import OPTIMIZERS
from .plots import plot_benchmark, short_name
from .runner import Benchmark, load_results, result_path

PACKAGES = (
    "zerograds",
    "torch",
    "numpy",
    "scipy",
    "optuna",
    "cmaes",
    "nevergrad",
    "coco-experiment",
    "cocopp",
    "matplotlib",
)


def machine_description() -> str:
    """Return one line on the CPU, core count, Python and the versions of the packages."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {sys.version.split()[0]}; " + ", ".join(versions)
    )


def format_count(value: float) -> str:
    """Format an evaluation count compactly (``1.2k``); inf and NaN as an em dash."""
    if not math.isfinite(value):
        return "—"
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def benchmark_section(
    benchmark: Benchmark,
    records: list[dict[str, Any]],
    figures: list[Path],
    doc_dir: Path,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Return the Markdown lines of one benchmark and its per-problem comparisons."""
    table = target_table(records)
    problems = list(benchmark.problems)
    optimizers = [name for name in benchmark.optimizers if any(k[1] == name for k in table)]
    seeds = ", ".join(str(seed) for seed in benchmark.seeds)
    limit = (
        f"; Optuna, full CMA, Nevergrad and dual annealing stop after {benchmark.max_seconds:g} "
        "s per run"
        if benchmark.max_seconds
        else ""
    )
    total = sum(record.get("wall", 0.0) for record in records)
    lines = [
        f"### {benchmark.title}",
        "",
        f"Budget {benchmark.max_evals:,} evaluations per run, seeds {seeds} "
        f"(COCO: instance = seed + 1){limit}. {len(records)} cells, "
        f"{total:.0f} s of optimizer time in all.",
        "",
    ]
    settings = next(
        (r["settings"] for r in records if r["optimizer"] == "zerograds" and r.get("settings")),
        None,
    )
    if settings:
        described = ", ".join(f"{key} {value}" for key, value in settings.items())
        lines += [f"ZeroGrads' defaults as run (first problem): {described}.", ""]
    for path in figures:
        relative = os.path.relpath(path, doc_dir)
        lines += [f"![{path.stem}]({relative})", ""]

    ranks = mean_ranks(table, problems, optimizers)
    header = ["optimizer", "mean rank"] + [f"problems to {target:g}" for target in TARGETS]
    header += ["median s/iteration"]
    rows = []
    for name in sorted(optimizers, key=lambda item: ranks.get(item, math.inf)):
        reached = [
            sum(
                1
                for problem in problems
                if (problem, name) in table and math.isfinite(table[problem, name][target])
            )
            for target in TARGETS
        ]
        seconds = [
            table[problem, name]["seconds per iteration"]
            for problem in problems
            if (problem, name) in table
        ]
        finite_seconds = sorted(value for value in seconds if math.isfinite(value))
        median_seconds = finite_seconds[len(finite_seconds) // 2] if finite_seconds else math.nan
        rows.append(
            [OPTIMIZERS[name].label, f"{ranks.get(name, math.nan):.1f}"]
            + [f"{count}/{len(problems)}" for count in reached]
            + [f"{median_seconds:.2g}"]
        )
    lines += [
        "Ranking: on each problem the optimizers are ordered by the hardest target reached "
        "(median over seeds), then by the evaluations it took, then by the final gap. The "
        "table gives the mean of those ranks and on how many problems each target was reached.",
        "",
        *_table(header, rows),
        "",
    ]

    comparisons = [compare_with_peers(table, problem, optimizers) for problem in problems]
    header = ["problem"] + [f"to {target:g}: ZeroGrads / best peer" for target in TARGETS]
    header += ["final gap: ZeroGrads / best peer"]
    rows = []
    for comparison in comparisons:
        cells = [short_name(comparison["problem"])]
        if not any((comparison["problem"], name) in table for name in optimizers):
            rows.append(cells + ["not run yet"] * (len(TARGETS) + 1))
            continue
        for target in TARGETS:
            entry = comparison[target]
            reached = entry["peer"] and math.isfinite(entry["peer_evals"])
            peer = OPTIMIZERS[entry["peer"]].label if reached else "no peer"
            mark = " **(ZeroGrads fewer)**" if entry["wins"] else ""
            cells.append(
                f"{format_count(entry['zerograds'])} / {format_count(entry['peer_evals'])} "
                f"({peer}){mark}"
            )
        final = comparison["final"]
        peer = OPTIMIZERS[final["peer"]].label if final["peer"] else "none"
        cells.append(f"{final['zerograds']:.2g} / {final['peer_final']:.2g} ({peer})")
        rows.append(cells)
    lines += [
        "Evaluations to reach 1e-1, 1e-3 and 1e-6 of the initial gap f0 - f* (median over "
        "seeds; — where the median run did not reach it), ZeroGrads with its defaults against "
        "the best peer (ZeroGrads' ablations are not peers):",
        "",
        *_table(header, rows),
        "",
    ]

    variants = [name for name in optimizers if OPTIMIZERS[name].zerograds]
    if len(variants) > 1:
        lines += [
            "ZeroGrads' variants among themselves, the evidence for its defaults: mean rank "
            "among the variants, geometric mean over the problems of the median final gap, and "
            "on how many problems the variant ended with the lowest final gap of all variants.",
            "",
            *_variant_table(table, problems, variants),
            "",
        ]

    notes = _unavailable_notes(records)
    if notes:
        lines += ["Not run or failed:", "", *notes, ""]
    return lines, comparisons


def _variant_table(
    table: dict[tuple[str, str], dict[str, Any]], problems: list[str], variants: list[str]
) -> list[str]:
    ranks = mean_ranks(table, problems, variants)
    lowest: dict[str, int] = dict.fromkeys(variants, 0)
    for problem in problems:
        present = [name for name in variants if (problem, name) in table]
        finals = {name: table[problem, name]["final"] for name in present}
        finite = {name: value for name, value in finals.items() if math.isfinite(value)}
        if finite:
            lowest[min(finite, key=finite.__getitem__)] += 1
    rows = []
    for name in sorted(variants, key=lambda item: ranks.get(item, math.inf)):
        finals = [
            table[problem, name]["final"]
            for problem in problems
            if (problem, name) in table and math.isfinite(table[problem, name]["final"])
        ]
        geometric = "—"
        if finals:
            geometric = f"{math.exp(sum(math.log(value) for value in finals) / len(finals)):.3g}"
        rows.append(
            [
                OPTIMIZERS[name].label,
                f"{ranks.get(name, math.nan):.1f}",
                geometric,
                f"{lowest[name]}/{len(problems)}",
            ]
        )
    header = ["variant", "mean rank", "geometric mean final gap", "lowest final gap"]
    return _table(header, rows)


def _unavailable_notes(records: list[dict[str, Any]]) -> list[str]:
    seen: dict[tuple[str, str], list[str]] = {}
    for record in records:
        if record.get("status") in ("unavailable", "error"):
            key = (record["optimizer"], record["status"] + ": " + record.get("message", ""))
            seen.setdefault(key, []).append(short_name(record["problem"]))
    everything = {short_name(record["problem"]) for record in records}
    notes = []
    for (name, message), problems in seen.items():
        names = set(problems)
        if names == everything:
            listed = "all problems"
        else:
            listed = ", ".join(sorted(names, key=lambda item: (len(item), item)))
        notes.append(f"- {OPTIMIZERS[name].label} ({listed}): {message}")
    return notes


def summary_lines(comparisons: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Return the lines that count where ZeroGrads needs fewer evaluations than every peer."""
    lines = []
    for target in TARGETS:
        wins, contested, total = [], 0, 0
        for benchmark, entries in comparisons.items():
            for entry in entries:
                total += 1
                cell = entry[target]
                if math.isfinite(cell["zerograds"]) or math.isfinite(cell["peer_evals"]):
                    contested += 1
                if cell["wins"]:
                    wins.append(f"{benchmark} {short_name(entry['problem'])}")
        listed = ", ".join(wins) if wins else "none"
        lines.append(
            f"- to {target:g} of the initial gap: ZeroGrads needs fewer evaluations than every "
            f"peer on {len(wins)} of {total} problems ({contested} reached by anyone): {listed}."
        )
    lowest = [
        f"{benchmark} {short_name(entry['problem'])} "
        f"({entry['final']['zerograds']:.2g} against {entry['final']['peer_final']:.2g})"
        for benchmark, entries in comparisons.items()
        for entry in entries
        if entry["final"]["zerograds"] < entry["final"]["peer_final"]
    ]
    total = sum(len(entries) for entries in comparisons.values())
    lines.append(
        f"- lowest final gap at the end of the budget (median): ZeroGrads below every peer on "
        f"{len(lowest)} of {total} problems: {', '.join(lowest) if lowest else 'none'}."
    )
    return lines


NO_RESULTS = "No results yet."


def reported_benchmarks(doc_path: Path, suite: str, benchmarks: list[Benchmark]) -> list[str]:
    """Return the names of the benchmarks whose subsection in the suite's block of
    ``doc_path`` shows results (anything but "No results yet.")."""
    doc_path = Path(doc_path)
    if not doc_path.is_file():
        return []
    begin, end = f"<!-- bench:{suite}:begin -->", f"<!-- bench:{suite}:end -->"
    content = doc_path.read_text()
    if begin not in content or end not in content:
        return []
    block = content.split(begin, 1)[1].split(end, 1)[0]
    subsections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in block.splitlines():
        if line.startswith("#"):
            current = subsections.setdefault(line.lstrip("#").strip(), [])
        elif current is not None:
            current.append(line)
    reported = []
    for benchmark in benchmarks:
        lines = subsections.get(benchmark.title)
        text = "\n".join(lines or []).strip()
        if text and text != NO_RESULTS:
            reported.append(benchmark.name)
    return reported


def check_report_inputs(
    suite: str, benchmarks: list[Benchmark], out_dir: Path, doc_path: Path
) -> None:
    """Check that redrawing the report from ``out_dir`` alone loses no reported result.

    ``zerograds bench --report-only`` calls this before it writes anything.

    Raises:
        ValueError: ``out_dir`` does not exist or contains no result of the suite, or it lacks
            the results of a benchmark that the report's block of the suite shows.
    """
    out_dir = Path(out_dir)
    files = ", ".join(result_path(out_dir, benchmark).name for benchmark in benchmarks)
    if not out_dir.is_dir():
        raise ValueError(
            f"--out {out_dir} not found; --report-only redraws the report from the result "
            f"files of suite {suite!r} ({files}). Give the folder that contains them"
        )
    with_results = {
        benchmark.name for benchmark in benchmarks if load_results(result_path(out_dir, benchmark))
    }
    if not with_results:
        raise ValueError(
            f"--out {out_dir} contains no result of suite {suite!r} (expected {files}); give the "
            "folder of the suite's results or run the suite without --report-only"
        )
    missing = [
        name
        for name in reported_benchmarks(doc_path, suite, benchmarks)
        if name not in with_results
    ]
    if missing:
        raise ValueError(
            f"--out {out_dir} has no results for {', '.join(missing)}, which {doc_path} shows; "
            "redrawing would replace them with 'No results yet.'. Give the folder that contains "
            "those results"
        )


def write_report(
    suite: str,
    benchmarks: list[Benchmark],
    out_dir: Path,
    doc_path: Path,
    elapsed: float | None = None,
    extra_lines: list[str] | None = None,
    require_results: bool = False,
) -> list[Path]:
    """Draw the figures of every benchmark and write the suite's block of ``doc_path``.

    Args:
        suite: suite name, used in the markers and figure names.
        benchmarks: the suite's benchmarks; their result files are read from ``out_dir``.
        out_dir: folder of the result files.
        doc_path: the Markdown file to update (created when missing).
        elapsed: wall-clock seconds of the run that produced the results, if known.
        extra_lines: Markdown appended to the block (the cocopp figures, for example).
        require_results: refuse to write when ``out_dir`` lacks results that the block shows
            now (see ``check_report_inputs``), as ``zerograds bench --report-only`` does.

    Returns:
        The paths of the figures written.

    Raises:
        ValueError: with ``require_results``, what ``check_report_inputs`` raises; nothing is
            written then.
    """
    doc_path = Path(doc_path)
    if require_results:
        check_report_inputs(suite, benchmarks, out_dir, doc_path)
    figures_dir = doc_path.parent / "figures"
    block = [
        f"## Suite `{suite}`",
        "",
        "Generated by `zerograds bench --suite "
        + suite
        + "`. Machine and versions: "
        + machine_description()
        + ".",
        "",
    ]
    if elapsed is not None:
        block += [f"The run that produced these results took {elapsed / 60:.1f} minutes.", ""]
    written: list[Path] = []
    comparisons: dict[str, list[dict[str, Any]]] = {}
    sections: list[str] = []
    for benchmark in benchmarks:
        records = load_results(result_path(out_dir, benchmark))
        if not records:
            sections += [f"### {benchmark.title}", "", NO_RESULTS, ""]
            continue
        figures = plot_benchmark(benchmark, records, figures_dir, suite)
        written += figures
        lines, comparisons[benchmark.name] = benchmark_section(
            benchmark, records, figures, doc_path.parent
        )
        sections += lines
    block += ["### Where ZeroGrads needs fewer evaluations than every peer", ""]
    block += [*summary_lines(comparisons), ""]
    block += sections
    if extra_lines:
        block += extra_lines
    _replace_block(doc_path, suite, "\n".join(block).rstrip() + "\n")
    return written


def _replace_block(doc_path: Path, suite: str, text: str) -> None:
    begin, end = f"<!-- bench:{suite}:begin -->", f"<!-- bench:{suite}:end -->"
    content = doc_path.read_text() if doc_path.exists() else "# Benchmarks\n"
    replacement = f"{begin}\n{text}{end}"
    if begin in content and end in content:
        head, rest = content.split(begin, 1)
        _, tail = rest.split(end, 1)
        content = head + replacement + tail
    else:
        content = content.rstrip() + "\n\n" + replacement + "\n"
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(content)
