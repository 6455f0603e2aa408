"""Parameter counts of every arch x variant, as a table (the docs' Design > Registries, and the main job's).

python -m deepsquare.train.zoo_table [--num-classes 1000] [--variant gap,sp,ss,sex,se]
"""

from __future__ import annotations

import argparse

from . import count_parameters
from .models import ARCHS, build_model

# torchvision's count of each plain model at 1000 classes (``sum(p.numel() for p in
# torchvision.models.<arch>().parameters())``): the zoo's ``gap`` models must match it exactly.
TORCHVISION_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "shufflenetv2_x0_5": 1_366_792,
    "shufflenetv2_x1_0": 2_278_604,
    "shufflenetv2_x1_5": 3_503_624,
    "shufflenetv2_x2_0": 7_393_996,
}
DEFAULT_VARIANTS = (
    "gap",
    "sp",
    "gem",
    "ss",
    "sex",
    "sen",
    "se",
    "se_slow_squeeze",
    "se_slow_excite",
    "se_slow_both",
    "se_bump",
)


def parameter_rows(
    archs: tuple[str, ...] = tuple(a for a in ARCHS if a != "vanilla_cnn"),
    variants: tuple[str, ...] = DEFAULT_VARIANTS,
    num_classes: int = 1000,
) -> list[dict[str, int | str]]:
    """One row per arch: ``gap``'s count, then each variant's count minus ``gap``'s."""
    rows: list[dict[str, int | str]] = []
    for arch in archs:
        base = count_parameters(build_model(arch, "gap", num_classes))
        row: dict[str, int | str] = {"arch": arch, "gap": base}
        for variant in variants:
            if variant != "gap":
                row[variant] = count_parameters(build_model(arch, variant, num_classes)) - base
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, int | str]]) -> str:
    columns = list(rows[0])
    head = ["arch", "gap (params)"] + [f"+{c}" for c in columns[2:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["arch"])] + [f"{row[c]:,}" for c in columns[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument(
        "--variant", dest="variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated variant names"
    )
    args = parser.parse_args(argv)
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    print(markdown_table(parameter_rows(variants=variants, num_classes=args.num_classes)))


if __name__ == "__main__":
    main()
