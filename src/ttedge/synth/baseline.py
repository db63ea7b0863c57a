"""Committed synthesis baselines and the per-key tolerance each figure is allowed to drift by.

A baseline is a small JSON file::

    {
      "values": {"ecp5.lut4": 805, "ecp5.fmax_mhz": 49.37, "ecp5.status": "ok", ...},
      "tolerances": {"ecp5.lut4": {"rel": 0.05}, "ecp5.fmax_mhz": {"rel": 0.10}, ...}
    }

Every key of ``values`` must appear in the new result. A number passes when
``|new - old| <= max(abs, rel * |old|)`` for its tolerance (exact when it has none); strings and
booleans must be equal. Keys only in the new result are not checked, so adding a figure does not
break old baselines. A mismatch raises :class:`BaselineError` with one line per differing key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import TTEdgeError

__all__ = ["BaselineError", "Mismatch", "Tolerance", "check_against_baseline", "compare_to_baseline", "write_baseline"]

Flat = Mapping[str, float | int | str | bool]


class BaselineError(TTEdgeError):
    """Figures that moved beyond their tolerance from a committed baseline, or an unreadable baseline."""


@dataclass(frozen=True)
class Tolerance:
    """How far a number may move: ``abs`` in its own unit, ``rel`` as a fraction of the baseline value."""

    rel: float = 0.0
    abs: float = 0.0

    def allows(self, old: float, new: float) -> bool:
        return math.isclose(new, old, rel_tol=0.0, abs_tol=max(self.abs, self.rel * abs(old)))

    def __str__(self) -> str:
        parts = ([f"±{self.rel:.0%}"] if self.rel else []) + ([f"±{self.abs:g}"] if self.abs else [])
        return " or ".join(parts) if parts else "exact"

    @classmethod
    def parse(cls, spec: Tolerance | Mapping[str, float] | float) -> Tolerance:
        """A tolerance from itself, ``{"rel": .., "abs": ..}``, or a bare number (relative)."""
        if isinstance(spec, Tolerance):
            return spec
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"rel", "abs"}
            if unknown:
                raise BaselineError(f"a tolerance has unknown fields {sorted(unknown)}; use 'rel' and/or 'abs'.")
            return cls(rel=float(spec.get("rel", 0.0)), abs=float(spec.get("abs", 0.0)))
        return cls(rel=float(spec))


@dataclass(frozen=True)
class Mismatch:
    """One key whose new value is outside its tolerance (``new`` is None when the key is missing)."""

    key: str
    old: float | int | str | bool
    new: float | int | str | bool | None
    tolerance: Tolerance

    def line(self) -> str:
        new = "<missing>" if self.new is None else repr(self.new)
        change = ""
        numbers = (int, float)
        if isinstance(self.new, numbers) and isinstance(self.old, numbers) and not isinstance(self.old, bool) and self.old:
            change = f" ({(self.new - self.old) / abs(self.old):+.1%})"
        return f"  {self.key}: baseline {self.old!r}, now {new}{change}, allowed {self.tolerance}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load(path: Path) -> tuple[dict[str, float | int | str | bool], dict[str, Tolerance]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"the baseline {path} does not exist; write it with write_baseline(result.to_flat(), path).") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"the baseline {path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or rewrite it.") from None
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
        raise BaselineError(f"the baseline {path} has no 'values' object; rewrite it with write_baseline.")
    tolerances = {k: Tolerance.parse(v) for k, v in data.get("tolerances", {}).items()}
    return data["values"], tolerances


def compare_to_baseline(
    result_flat: Flat, baseline_path: str | Path, tolerances: Mapping[str, Tolerance | Mapping[str, float] | float] | None = None
) -> list[Mismatch]:
    """The keys of the baseline whose new values fall outside their tolerance ([] when all pass).

    ``tolerances`` overrides, key by key, those stored in the baseline file.
    """
    values, stored = _load(Path(baseline_path))
    tol = {**stored, **{k: Tolerance.parse(v) for k, v in (tolerances or {}).items()}}
    mismatches = []
    for key, old in values.items():
        t = tol.get(key, Tolerance())
        if key not in result_flat:
            mismatches.append(Mismatch(key, old, None, t))
            continue
        new = result_flat[key]
        if _is_number(old) and _is_number(new):
            ok = t.allows(float(old), float(new))
        else:
            ok = old == new and type(old) is type(new)
        if not ok:
            mismatches.append(Mismatch(key, old, new, t))
    return mismatches


def check_against_baseline(
    result_flat: Flat, baseline_path: str | Path, tolerances: Mapping[str, Tolerance | Mapping[str, float] | float] | None = None
) -> None:
    """Raise :class:`BaselineError` listing every figure outside its tolerance of the committed baseline."""
    mismatches = compare_to_baseline(result_flat, baseline_path, tolerances)
    if mismatches:
        n = len(mismatches)
        head = (
            f"{n} figure{'s' if n > 1 else ''} moved beyond tolerance from the baseline {baseline_path}; "
            "fix the regression, or rewrite the baseline with write_baseline if the change is intended:"
        )
        raise BaselineError("\n".join([head] + [m.line() for m in mismatches]))


def write_baseline(
    result_flat: Flat, baseline_path: str | Path, tolerances: Mapping[str, Tolerance | Mapping[str, float] | float],
    keys: list[str] | None = None,
) -> Path:
    """Write ``result_flat`` (only ``keys`` if given) with ``tolerances`` as a baseline file; returns its path."""
    chosen = {k: result_flat[k] for k in (keys if keys is not None else sorted(result_flat))}
    tol = {k: Tolerance.parse(v) for k, v in tolerances.items()}
    as_json = {k: {f: getattr(t, f) for f in ("rel", "abs") if getattr(t, f)} for k, t in sorted(tol.items())}
    path = Path(baseline_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"values": chosen, "tolerances": as_json}, indent=2) + "\n")
    return path
