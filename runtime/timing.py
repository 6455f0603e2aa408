"""The one timing protocol: interleaved, rotated, with sessions re-created per block (no torch here).

Used by every latency measurement of the project: ``deepsquare bench`` (runtime sessions),
``deepsquare profile ios`` (Core ML compute units), and the training benchmarks (a DSoP
step against a plain one, iSQRT-COV against eigh). Two biases it removes, both measured on
this project's 2-core machine:

- drift: the models are interleaved run by run, and the order rotates every round
  (A B C, B C A, C A B, ...), so drift and "the one timed right after X" hit all alike;
- first-session bias: the first runtime session created ran ~5% slower than the others for
  its whole life (ONNX Runtime and LiteRT alike), whichever model it held. So the rounds are
  split into blocks; each block creates its sessions anew, in rotated order, and warms them up.

Each model's latency is then read as a ratio to a baseline: the geometric mean of paired
per-round ratios, with a 95% interval (normal approximation on the logs).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Run = Callable[[], Any]
Opener = Callable[[], tuple[Run, float]]  # creates a session: (one timed call, init seconds)


@dataclass
class TimingPlan:
    runs: int = 30
    warmup: int = 5  # untimed rounds after each block's new sessions
    time_budget_s: float | None = None  # instead of runs: seconds of rounds in all (at least two rounds)


@dataclass
class Timing:
    times_ms: list[list[float]]  # per model, paired by round
    init_ms: list[float]  # per model, median over its blocks
    rounds: int
    cached_at: str | None = None  # when it was measured, for a timing read from the bench cache


def rotation(count: int, round_index: int) -> list[int]:
    """The order of round ``round_index``: every model takes every position equally often."""
    start = round_index % count
    return list(range(start, count)) + list(range(start))


def block_plan(models: int, plan: TimingPlan) -> list[int | float]:
    """Rounds (or seconds) of each block; one block per model (at most one per round)."""
    if plan.time_budget_s:
        return [plan.time_budget_s / models] * models
    blocks = min(models, plan.runs)
    return [plan.runs // blocks + (1 if b < plan.runs % blocks else 0) for b in range(blocks)]


def progress_total(models: int, plan: TimingPlan) -> float:
    """What ``time_interleaved`` reports to ``advance`` in all: rounds (warm-up included), or seconds."""
    if plan.time_budget_s:
        return plan.time_budget_s
    return len(block_plan(models, plan)) * plan.warmup + plan.runs


def time_interleaved(
    openers: Sequence[Opener], plan: TimingPlan, advance: Callable[[float], None] = lambda n: None
) -> Timing:
    """Time every opener's session, interleaved in rotating order, sessions re-created per block."""
    count = len(openers)
    times: list[list[float]] = [[] for _ in openers]
    inits: list[list[float]] = [[] for _ in openers]
    rounds = 0
    blocks = block_plan(count, plan)
    for b, share in enumerate(blocks):
        runs: list[Run | None] = [None] * count
        for i in rotation(count, b):
            runs[i], init_s = openers[i]()
            inits[i].append(init_s * 1e3)
        for warm in range(plan.warmup):  # fresh sessions are cold
            for i in rotation(count, warm):
                runs[i]()
            if not plan.time_budget_s:
                advance(1)
        block_start, block_rounds = time.perf_counter(), 0
        while True:
            if plan.time_budget_s:
                # at least one round per block, and two in all: an interval needs them
                elapsed = time.perf_counter() - block_start
                enough = elapsed >= share and block_rounds >= (2 if len(blocks) == 1 else 1)
            else:
                enough = block_rounds >= share
            if enough:
                break
            for i in rotation(count, rounds):
                start = time.perf_counter()
                runs[i]()
                times[i].append((time.perf_counter() - start) * 1e3)
            rounds += 1
            block_rounds += 1
            if not plan.time_budget_s:
                advance(1)
        if plan.time_budget_s:
            advance(share)
        del runs  # sessions of this block are released before the next block creates its own
    return Timing(times, [statistics.median(v) for v in inits], rounds)


def ratio_interval(variant_ms: list[float], baseline_ms: list[float]) -> tuple[float, float, float]:
    """Geometric-mean ratio of paired rounds and its 95% interval (normal approximation on logs)."""
    logs = [math.log(v / g) for v, g in zip(variant_ms, baseline_ms, strict=True)]
    mean = statistics.fmean(logs)
    half = 1.96 * (statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else 0.0)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
