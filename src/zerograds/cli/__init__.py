"""Command line interface (placeholder until the CLI lands)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the ``zerograds`` command line."""
    raise SystemExit("the zerograds command line is not built yet")
