"""Benchmark: the cost of a DSoP training step as a ratio to the plain step.

    deepsquare-bench-dsop [--arch shufflenetv2_x0_5] [--variant sp+ss+sex]
                          [--stages stage2,stage3,stage4] [--batch 64] [--input-size 32]

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="shufflenetv2_x0_5")
    parser.add_argument("--variant", default="sp+ss+sex")
    parser.add_argument("--stages", default="stage2,stage3,stage4", help="stages with a DSoP branch")
    parser.add_argument("--dim", type=int, default=64, help="DSoP reduced channels d (default 64)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    if min(args.batch, args.runs, args.dim) < 1 or args.warmup < 0 or args.input_size < 8:
        parser.error("--batch, --runs and --dim must be >= 1, --warmup >= 0, --input-size >= 8")
    stem = "cifar" if args.input_size <= 64 else "imagenet"
    dsop = DSoPSpec(tuple(s.strip() for s in args.stages.split(",") if s.strip()), dim=args.dim)
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.input_size, args.input_size)
    labels = torch.randint(0, 10, (args.batch,))
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
        f"{args.arch} {args.variant}, batch {args.batch} at {args.input_size}px, DSoP on {','.join(dsop.stages)} "
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


if __name__ == "__main__":
    main()
