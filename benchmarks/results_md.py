"""Writing one benchmark's section of benchmarks/RESULTS.md without touching the others, and its
raw numbers to benchmarks/results/."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Callable

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_section(text: str, begin: str, end: str, path: Path = RESULTS_MD) -> None:
    """Replace the region from ``begin`` to ``end`` (markers included in ``text``), or append it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        old = head + text + rest.split(end, 1)[1]
    else:
        old = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(old)


def publish(result: dict[str, Any], json_name: str, section: Callable[[dict[str, Any], str], str], begin: str, end: str) -> str:
    """Stamp ``result`` with the time (``measured``), write it to ``results/<json_name>`` and its
    section ``section(result, when)`` (markers included) into RESULTS.md; returns the time."""
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result["measured"] = when
    (RESULTS_DIR / json_name).write_text(json.dumps(result, indent=2) + "\n")
    write_section(section(result, when), begin, end)
    return when
