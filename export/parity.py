"""The parity gate: an exported model, run in its runtime, against the PyTorch deploy model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# fp32 must agree to float32 round-off; fp16 to half-precision round-off through the network (measured
# here: 3e-4..1e-3 relative on trained models, so 1e-2 leaves 10x room); int8 is judged by top-1 agreement.
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs": 1e-4, "max_rel": 1e-4, "top1": 1.0},
    "fp16": {"max_abs": 1e-2, "max_rel": 1e-2, "top1": 0.98},
    "int8": {"max_abs": float("inf"), "max_rel": float("inf"), "top1": 0.9},
}


@dataclass
class ParityResult:
    format: str
    runtime: str
    precision: str
    samples: int
    max_abs_diff: float
    max_rel_diff: float  # max |diff| / max |reference|
    top1_agreement: float
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def compare(fmt: str, runtime: str, precision: str, got: np.ndarray, reference: np.ndarray) -> ParityResult:
    tol = TOLERANCES[precision]
    diff = np.abs(got.astype(np.float64) - reference.astype(np.float64))
    max_abs = float(diff.max())
    scale = float(np.abs(reference).max()) or 1.0
    max_rel = max_abs / scale
    # A near-tie in the reference cannot be called a disagreement at fp32 round-off.
    top2 = np.sort(reference, axis=1)[:, -2:]
    if np.isfinite(tol["max_abs"]):
        decisive = (top2[:, 1] - top2[:, 0]) > 2 * tol["max_abs"] * max(1.0, scale)
    else:
        decisive = np.ones(len(reference), dtype=bool)
    agree = got.argmax(1) == reference.argmax(1)
    top1 = float(agree[decisive].mean()) if decisive.any() else 1.0
    problems = []
    if not np.isfinite(got).all():
        problems.append("non-finite outputs")
    if max_abs > tol["max_abs"] * max(1.0, scale) and max_rel > tol["max_rel"]:
        problems.append(f"max abs diff {max_abs:.3g} (relative {max_rel:.3g}) exceeds {tol['max_rel']:g} relative")
    if top1 < tol["top1"]:
        problems.append(f"top-1 agreement {top1:.1%} below {tol['top1']:.0%}")
    return ParityResult(
        fmt, runtime, precision, len(reference), max_abs, max_rel, top1, not problems, "; ".join(problems)
    )
