"""Benchmark: one forward+backward of iSQRT-COV against an eigendecomposition square root.

    deepsquare-bench-isqrt [--batch 64] [--dim 128] [--iterations 5] [--runs 20]

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="matrices per batch (default 64)")
    parser.add_argument("--dim", type=int, default=128, help="covariance size d (default 128)")
    parser.add_argument("--iterations", type=int, default=5, help="Newton-Schulz steps T (default 5)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per method (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.batch, args.dim, args.iterations, args.runs) < 1 or args.warmup < 0:
        parser.error("--batch, --dim, --iterations and --runs must be >= 1, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"forward+backward, batch {args.batch}, d {args.dim}, {args.runs} runs after {args.warmup} "
        f"warm-up, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    times = run(args.batch, args.dim, args.iterations, args.runs, args.warmup, args.seed)
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


if __name__ == "__main__":
    main()
