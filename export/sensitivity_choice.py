"""The choice of an int8 sensitivity sweep (``deepsquare.export.sensitivity``), kept pure: one measured int8
file (``Measurement``), the goal it is held to, and the greedy fallback that keeps float the unit kinds that
did the most damage, one at a time, given a function that measures a file. No torch here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

GOAL_AGREEMENT = 99.0  # % of held-out images where the int8 file's top-1 is the PyTorch deploy model's
GOAL_TOP1 = 1.0  # points: |held-out top-1 of the int8 file - that of the PyTorch deploy model|


@dataclass
class Measurement:
    """One int8 file of a sweep: which unit kinds it kept float and how it did against PyTorch."""

    label: str  # "all int8", "square-pooling alone int8", "keep float: stem, classifier"
    keep_float: tuple[str, ...]  # unit kinds kept float
    modules: int  # module paths kept float
    agreement: float | None = None  # % of held-out images with PyTorch's top-1 (None: the file failed)
    top1: float | None = None  # held-out top-1 of the file, %
    reference_top1: float | None = None  # of the PyTorch deploy model, %
    diff: float | None = None  # top-1 points, file - PyTorch, paired over the images
    ci95: tuple[float, float] | None = None
    float_ops: int | None = None  # as the converter counted them, where it does
    error: str | None = None  # why the file could not be made or run
    seconds: float = 0.0

    def meets_goal(self) -> bool:
        """Agreement >= ``GOAL_AGREEMENT`` and top-1 within ``GOAL_TOP1`` point of PyTorch."""
        if self.error is not None or self.agreement is None or self.diff is None:
            return False
        return self.agreement >= GOAL_AGREEMENT and abs(self.diff) <= GOAL_TOP1

    def figures(self) -> str:
        """``agreement 97.3%, top-1 -0.8 (-1.9 to +0.3)`` or ``failed: why``."""
        if self.error is not None or self.agreement is None or self.diff is None:
            return f"failed: {self.error}"
        low, high = self.ci95 or (float("nan"), float("nan"))
        return f"agreement {self.agreement:.1f}%, top-1 {self.diff:+.1f} ({low:+.1f} to {high:+.1f})"


# --- the greedy choice (pure: the measurements come from ``measure``) ------------------------------------------


def damage_order(alone: list[Measurement]) -> list[str]:
    """Unit kinds, the most damaging first: quantized alone, a failed file, then the lowest agreement, then the
    largest top-1 loss; ties keep the given order."""

    def damage(m: Measurement) -> tuple[float, float]:
        if m.error is not None or m.agreement is None or m.diff is None:
            return (-1.0, -1e9)
        return (m.agreement, m.diff)

    return [alone_kind(m) for m in sorted(alone, key=damage)]


def alone_label(kind: str) -> str:
    return f"{kind} alone int8"


def alone_kind(m: Measurement) -> str:
    """The one unit kind a measurement of (b) has in int8 (its label: ``alone_label``)."""
    return m.label.removesuffix(" alone int8")


@dataclass
class Fallback:
    keep_float: tuple[str, ...]
    steps: list[Measurement]
    reached: bool


def greedy_fallback(
    all_int8: Measurement, alone: list[Measurement], measure: Callable[[tuple[str, ...]], Measurement]
) -> Fallback:
    """Keep float the most damaging kinds (``damage_order``) one at a time, ``measure(kinds)`` each step,
    until a file meets the goal; none when the all-int8 file does. When none does (every kind float), the choice is
    the file that came closest: the highest agreement, then the smallest top-1 loss."""
    if all_int8.meets_goal():
        return Fallback((), [], True)
    kept: tuple[str, ...] = ()
    steps: list[Measurement] = []
    for kind in damage_order(alone):
        kept = (*kept, kind)
        steps.append(measure(kept))
        if steps[-1].meets_goal():
            return Fallback(kept, steps, True)
    ran = [m for m in [all_int8, *steps] if m.error is None and m.agreement is not None and m.diff is not None]
    if not ran:
        return Fallback(kept, steps, False)
    best = max(ran, key=lambda m: (m.agreement, -abs(m.diff or 0.0)))
    return Fallback(best.keep_float, steps, False)
