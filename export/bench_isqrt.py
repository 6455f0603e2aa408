"""``deepsquare bench isqrt``: one forward+backward of iSQRT-COV against an eigendecomposition square root.

Prints a table (median, p90 and min per method, in ms) and the eigh/iSQRT ratio with its 95%
interval. The two methods are timed with the project's one timing protocol
(deepsquare.runtime.timing: interleaved, rotating order), so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from torch import Tensor

from deepsquare.runtime.timing import TimingPlan, ratio_interval, time_interleaved
from deepsquare.train.isqrt import covariance, isqrt_newton_schulz


def eigh_sqrt(sigma: Tensor) -> Tensor:
    """``Sigma^(1/2)`` by symmetric eigendecomposition (the MPN-COV way)."""
    eigvals, eigvecs = torch.linalg.eigh(sigma)
    return eigvecs @ torch.diag_embed(eigvals.clamp_min(0).sqrt()) @ eigvecs.transpose(-1, -2)


def forward_backward(fn: Callable[[Tensor], Tensor], features: Tensor) -> None:
    x = features.detach().requires_grad_(True)
    fn(covariance(x)).sum().backward()


def run(batch: int, dim: int, iterations: int, runs: int, warmup: int, seed: int) -> dict[str, list[float]]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, dim, 196, generator=generator)  # a 14x14 map
    methods: dict[str, Callable[[Tensor], Tensor]] = {
        f"isqrt (T={iterations})": lambda s: isqrt_newton_schulz(s, iterations),
        "eigh": eigh_sqrt,
    }
    openers = [lambda fn=fn: ((lambda: forward_backward(fn, features)), 0.0) for fn in methods.values()]
    timing = time_interleaved(openers, TimingPlan(runs=runs, warmup=warmup))
    return {name: [ms / 1e3 for ms in t] for name, t in zip(methods, timing.times_ms, strict=True)}


def report(args: argparse.Namespace) -> int:
    """Time both methods as ``args`` asks (``deepsquare bench isqrt``) and print the table."""
    torch.set_num_threads(args.threads[0])
    print(
        f"forward+backward, batch {args.batch_size}, d {args.dsop_dim}, {args.runs} runs after {args.warmup} "
        f"warm-up, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    times = run(args.batch_size, args.dsop_dim, args.dsop_iterations, args.runs, args.warmup, args.seed)
    print(f"{'method':<14} {'median ms':>10} {'p90 ms':>10} {'min ms':>10}")
    medians = {}
    for name, values in times.items():
        ordered = sorted(values)
        medians[name] = statistics.median(ordered)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"{name:<14} {medians[name] * 1e3:>10.2f} {p90 * 1e3:>10.2f} {ordered[0] * 1e3:>10.2f}")
    isqrt_name, eigh_name = list(medians)
    ratio, low, high = ratio_interval(times[eigh_name], times[isqrt_name])
    print(f"paired per-round ratio: geometric mean {ratio:.2f}, 95% interval {low:.2f}-{high:.2f}")
    print(f"eigh / iSQRT median ratio: {medians[eigh_name] / medians[isqrt_name]:.2f}x")
    return 0
