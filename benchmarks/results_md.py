"""Writing one benchmark's section of benchmarks/RESULTS.md without touching the others."""

from __future__ import annotations

from pathlib import Path

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(text: str, begin: str, end: str, path: Path = RESULTS_MD) -> None:
    """Replace the region from ``begin`` to ``end`` (markers included in ``text``), or append it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        old = head + text + rest.split(end, 1)[1]
    else:
        old = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(old)
