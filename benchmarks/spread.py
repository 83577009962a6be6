"""The benchmarks' summary of repeated measurements: the median, then the min-max range."""

from __future__ import annotations

import statistics


def spread(values: list[float], fmt: str) -> str:
    """``median (min-max)``, each in ``format(value, fmt)``."""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"
