"""Which precisions a benchmark times in which runtime (no torch here)."""

from __future__ import annotations

from .formats import FORMATS, by_runtime


def check_precisions(runtimes: list[str], precisions: list[str]) -> list[str]:
    """Notes for the precisions a timed runtime's format does not offer (those runtimes skip them);
    ValueError for an unknown precision or one that no timed runtime offers."""
    offered = {r: by_runtime(r).precisions for r in runtimes}
    table = "; ".join(f"{r}: {', '.join(p)}" for r, p in offered.items())
    if not precisions:
        raise ValueError(f"--precision needs at least one precision ({table})")
    known = list(dict.fromkeys(p for fmt in FORMATS.values() for p in fmt.precisions))
    notes = []
    for precision in precisions:
        if precision not in known:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(known)}")
        lacking = [r for r, p in offered.items() if precision not in p]
        if len(lacking) == len(offered):
            raise ValueError(
                f"precision {precision!r} is offered by none of the timed runtimes ({table}); "
                "choose other --precision or --to"
            )
        if lacking:
            verb = "does" if len(lacking) == 1 else "do"
            notes.append(
                f"{', '.join(lacking)} {verb} not offer {precision} ({table}): {precision} is timed in "
                f"{', '.join(r for r in offered if r not in lacking)} only"
            )
    return notes
