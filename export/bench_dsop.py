"""``deepsquare bench dsop``: the cost of a DSoP training step as a ratio to the plain step.

Times one forward+backward+SGD step of the model with and without DSoP branches
(same backbone, same batch) with the project's one timing protocol (deepsquare.runtime.timing:
interleaved, rotating order, blocks), and prints a table with the ratio and its 95% interval
(the DSoP paper, arXiv:2006.00809, reports roughly 2x for its ImageNet setting).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from deepsquare.runtime.timing import TimingPlan, ratio_interval, time_interleaved
from deepsquare.train import DSoPSpec, build_model, count_parameters
from deepsquare.train.trainer import dsop_loss


def make_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, dsop: DSoPSpec | None):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    model.train()

    def step() -> None:
        out = model(images)
        logits, branches = out if dsop else (out, [])
        loss, _, _ = dsop_loss(logits, branches, labels, dsop)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def report(args: argparse.Namespace) -> int:
    """Time both steps as ``args`` asks (``deepsquare bench dsop``) and print the table."""
    torch.set_num_threads(args.threads[0])
    stem = "cifar" if args.input_size <= 64 else "imagenet"
    dsop = DSoPSpec(tuple(s.strip() for s in args.dsop.split(",") if s.strip()), dim=args.dsop_dim)
    torch.manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.input_size, args.input_size)
    labels = torch.randint(0, 10, (args.batch_size,))
    models = {
        "plain": build_model(args.arch, args.variant, 10, stem=stem),
        "dsop": build_model(args.arch, args.variant, 10, stem=stem, dsop=dsop),
    }
    steps = {name: make_step(m, images, labels, dsop if name == "dsop" else None) for name, m in models.items()}
    # The same model and optimizer in every block: a training step has no session to re-create.
    openers = [lambda step=step: (step, 0.0) for step in steps.values()]
    timing = time_interleaved(openers, TimingPlan(runs=args.runs, warmup=args.warmup))
    times = {name: [ms / 1e3 for ms in t] for name, t in zip(steps, timing.times_ms, strict=True)}
    print(
        f"{args.arch} {args.variant}, batch {args.batch_size} at {args.input_size}px, DSoP on {','.join(dsop.stages)} "
        f"(d={dsop.dim}), {args.runs} runs, {torch.get_num_threads()} threads"
    )
    print(f"{'model':<7} {'params':>10} {'median ms':>10} {'min ms':>9}")
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values)
        print(f"{name:<7} {count_parameters(models[name]):>10,} {medians[name] * 1e3:>10.1f} {min(values) * 1e3:>9.1f}")
    ratio, low, high = ratio_interval(timing.times_ms[1], timing.times_ms[0])
    print(f"paired per-round ratio: geometric mean {ratio:.2f}, 95% interval {low:.2f}-{high:.2f}")
    print(f"DSoP step / plain step: {medians['dsop'] / medians['plain']:.2f}x")
    return 0
