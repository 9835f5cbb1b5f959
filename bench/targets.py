"""Benchmark targets and the line ``bench/run.py`` reads for each one.

Every benchmark keeps its targets as data, ``{name: (op, bound)}``, and prints one
``target NAME OP BOUND: met`` (or ``NOT MET``) line per target after its figures.
A figure that was not measured (missing, or NaN) never meets its target.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping

Targets = Mapping[str, tuple[str, float]]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


def target_met(targets: Targets, name: str, value: float | None) -> bool:
    op, bound = targets[name]
    if value is None or math.isnan(value):
        return False
    return _OPS[op](value, bound)


def verdict(targets: Targets, name: str, value: float | None) -> str:
    op, bound = targets[name]
    return (
        f"target {name} {op} {bound:g}: {'met' if target_met(targets, name, value) else 'NOT MET'}"
    )


def report(targets: Targets, figures: Mapping[str, float]) -> int:
    """Print every figure, then every target's verdict; 1 if any target is missed."""
    for name, value in figures.items():
        print(f"{name}: {value:.3f}", flush=True)
    missed = 0
    for name in targets:
        value = figures.get(name)
        missed += not target_met(targets, name, value)
        print(verdict(targets, name, value), flush=True)
    return 1 if missed else 0
