"""The main job: ``deepsquare-demo`` (the README's first command).

Today it covers what has landed: the model zoo. It builds every arch and variant, checks
that plain models have torchvision's parameter counts, trains one step of ShuffleNetV2 x0.5
``gap``, ``se`` and ``sp+ss+sex`` with DSoP branches on a synthetic batch, detaches the
branches and checks the eval logits are bit-for-bit unchanged, times iSQRT-COV against an
eigh square root, and writes ``report.md`` + ``report.json``. Training, export and latency
benchmarks join it as their issues land; the command stays the same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from deepsquare.train import DSoPSpec, build_model, count_parameters
from deepsquare.train.bench_isqrt import run as time_isqrt
from deepsquare.train.zoo_table import markdown_table, parameter_rows

TORCHVISION_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "shufflenetv2_x0_5": 1_366_792,
    "shufflenetv2_x1_0": 2_278_604,
    "shufflenetv2_x1_5": 3_503_624,
    "shufflenetv2_x2_0": 7_393_996,
}
DEMO_VARIANTS = ("gap", "se", "sp+ss+sex")


def log(message: str) -> None:
    print(f"[deepsquare-demo] {message}", flush=True)


def dsop_round_trip(variant: str, seed: int) -> dict[str, object]:
    """One SGD step with DSoP branches, then detach them and compare eval logits."""
    torch.manual_seed(seed)
    dsop = DSoPSpec(("stage2", "stage3", "stage4"), dim=32)
    model = build_model("shufflenetv2_x0_5", variant, num_classes=10, stem="cifar", dropout=0.2, dsop=dsop)
    images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    start = time.perf_counter()
    logits, branches = model.train()(images)
    ce = torch.nn.functional.cross_entropy
    loss = dsop.main_weight * ce(logits, labels)
    loss = loss + sum(w * ce(b, labels) for w, b in zip(dsop.loss_weights, branches, strict=True))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    step_s = time.perf_counter() - start
    params_train = count_parameters(model)
    with torch.no_grad():
        before = model.eval()(images)
        after = model.strip_dsop()(images)
    return {
        "variant": variant,
        "loss": loss.item(),
        "train_step_s": round(step_s, 4),
        "params_with_dsop": params_train,
        "params_deploy": count_parameters(model),
        "params_plain_backbone": count_parameters(build_model("shufflenetv2_x0_5", variant, 10, stem="cifar")),
        "strip_bit_exact": bool(torch.equal(before, after)),
    }


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="report folder (default runs/demo)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        print(f"deepsquare-demo: cannot write to {args.out}: {exc.strerror}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    log("1/3 parameter counts of every arch x variant (1000 classes)")
    rows = parameter_rows()
    mismatches = [r["arch"] for r in rows if r["gap"] != TORCHVISION_COUNTS[str(r["arch"])]]
    verdict = "yes" if not mismatches else f"NO: {mismatches}"
    log(f"    plain models equal torchvision's counts: {verdict}")

    log("2/3 ShuffleNetV2 x0.5 with DSoP: one training step, detach, compare eval logits")
    trips = []
    for variant in DEMO_VARIANTS:
        trip = dsop_round_trip(variant, args.seed)
        trips.append(trip)
        log(
            f"    {variant:<10} params {trip['params_with_dsop']:,} -> {trip['params_deploy']:,} "
            f"(backbone {trip['params_plain_backbone']:,}), bit-exact after strip: {trip['strip_bit_exact']}"
        )

    log("3/3 iSQRT-COV vs eigh square root, forward+backward, batch 64, d 128")
    times = time_isqrt(batch=64, dim=128, iterations=5, runs=5, warmup=1, seed=args.seed)
    medians = {name: sorted(v)[len(v) // 2] * 1e3 for name, v in times.items()}
    for name, ms in medians.items():
        log(f"    {name:<12} {ms:8.1f} ms (median of 5)")

    ok = not mismatches and all(t["strip_bit_exact"] for t in trips)
    report = {
        "ok": ok,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "parameters": rows,
        "dsop_round_trips": trips,
        "isqrt_vs_eigh_ms": medians,
        "not_yet_in_this_job": [
            "training on data (issue: training)",
            "export + parity (issue: export)",
            "latency benchmarks (issue: benchmarks)",
        ],
        "wall_s": round(time.perf_counter() - started, 1),
    }
    trip_lines = [
        f"| {t['variant']} | {t['params_with_dsop']:,} | {t['params_deploy']:,} | {t['strip_bit_exact']} |"
        for t in trips
    ]
    markdown = "\n".join(
        [
            "# deepsquare report",
            "",
            "## Parameters (1000 classes): plain count, then what each variant adds",
            "",
            markdown_table(rows),
            "",
            "## DSoP branches detach without changing the logits (ShuffleNetV2 x0.5, 32x32)",
            "",
            "| variant | params training | params deploy | eval logits bit-exact |",
            "|---|---|---|---|",
            *trip_lines,
            "",
            "## iSQRT-COV vs eigh (forward+backward, batch 64, d 128, this machine)",
            "",
            *[f"- {name}: {ms:.1f} ms" for name, ms in medians.items()],
            "",
            "Not yet part of this job: training on data, export with parity, latency benchmarks.",
            "",
        ]
    )
    write_atomically(args.out / "report.json", json.dumps(report, indent=2) + "\n")
    write_atomically(args.out / "report.md", markdown)
    log(f"done in {report['wall_s']} s, {'all checks passed' if ok else 'SOME CHECKS FAILED'}")
    print(f"report: {(args.out / 'report.md').resolve()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
