"""Intervals for the evidence tables: a mean over seeds (Student's t), a paired difference over images (normal)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# Two-sided 95% quantiles of Student's t by degrees of freedom (1..30); above 30 the normal's 1.96 is close.
T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
Z95 = 1.959964


def t95(df: int) -> float:
    return T95[df - 1] if 1 <= df <= len(T95) else 1.96


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% interval (Student's t); a single value has no interval (nan)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_difference(correct: Sequence[int], baseline_correct: Sequence[int]) -> dict[str, float | bool | list]:
    """Two models on the same images: per image ``correct - baseline_correct`` (each 0 or 1), in points.

    The mean difference and its 95% interval from the per-image differences (normal approximation, sample
    standard deviation). It covers the sampling of the test images only: for one trained model each, not the
    spread between training seeds. ``measured`` is False (``ns``) when the interval contains 0.
    """
    if len(correct) != len(baseline_correct) or len(correct) < 2:
        raise ValueError(
            f"paired differences need two equal-length lists of at least 2 images, got "
            f"{len(correct)} and {len(baseline_correct)}"
        )
    diffs = [100.0 * (float(a) - float(b)) for a, b in zip(correct, baseline_correct, strict=True)]
    mean = statistics.fmean(diffs)
    half = Z95 * statistics.stdev(diffs) / math.sqrt(len(diffs))
    low, high = mean - half, mean + half
    return {"diff": mean, "ci95": [low, high], "images": len(diffs), "measured": not low <= 0 <= high}
