"""The model zoo: one builder over ResNet, ShuffleNetV2 and the paper's vanilla CNN."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from ..spec import DSoPSpec, ModelSpec
from ..variants import VariantError
from .base import SquareNet
from .resnet import RESNET_LAYOUTS, ResNet
from .shufflenetv2 import STAGE_OUT_CHANNELS, ShuffleNetV2
from .vanilla_cnn import POSITIONS, VanillaCNN


@dataclass(frozen=True)
class ArchInfo:
    """One row of the arch registry: what the trainer and the checks need to know about an arch."""

    name: str
    family: str  # "resnet" | "shufflenetv2" | "vanilla_cnn"
    model: type[SquareNet]
    weight_decay: float  # the papers' recipe: 1e-4 for ResNet (and the small CNN), 4e-5 for ShuffleNetV2
    has_blocks: bool = True  # block-level modules (sex, se*, sen) need building blocks

    @property
    def stages(self) -> tuple[str, ...]:
        """Stage names a DSoP branch can hang off."""
        return self.model.stage_names


ARCHS: dict[str, ArchInfo] = {
    "vanilla_cnn": ArchInfo("vanilla_cnn", "vanilla_cnn", VanillaCNN, 1e-4, has_blocks=False),
    **{name: ArchInfo(name, "resnet", ResNet, 1e-4) for name in RESNET_LAYOUTS},
    **{name: ArchInfo(name, "shufflenetv2", ShuffleNetV2, 4e-5) for name in STAGE_OUT_CHANNELS},
}
STEMS = ("imagenet", "cifar")


class ModelConfigError(ValueError):
    """A model request that cannot be built: unknown arch, bad option, impossible combination."""


def validate_spec(spec: ModelSpec) -> None:
    if spec.arch not in ARCHS:
        close = difflib.get_close_matches(spec.arch, ARCHS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelConfigError(f"unknown arch {spec.arch!r}{hint}; valid: {', '.join(ARCHS)}")
    variant = spec.parsed_variant  # raises VariantError
    if not ARCHS[spec.arch].has_blocks and variant.needs_blocks:
        raise VariantError(
            f"variant {spec.variant!r} needs building blocks (sex/se*/sen act inside blocks), "
            "which vanilla_cnn does not have; use elesquare_after= for its Table 2 positions"
        )
    if spec.num_classes < 1:
        raise ModelConfigError(f"num_classes must be >= 1, got {spec.num_classes}")
    if spec.stem not in STEMS:
        raise ModelConfigError(f"unknown stem {spec.stem!r}; valid: {', '.join(STEMS)}")
    if not 0 <= spec.dropout < 1:
        raise ModelConfigError(f"dropout must be in [0, 1), got {spec.dropout}")
    if spec.se_reduction < 1:
        raise ModelConfigError(f"se_reduction must be >= 1, got {spec.se_reduction}")
    if spec.ss_per_class and not variant.square_softmin:
        raise ModelConfigError("ss_per_class=True needs the 'ss' variant")
    if spec.elesquare_after:
        if spec.arch != "vanilla_cnn":
            raise ModelConfigError("elesquare_after= is an option of vanilla_cnn only (Table 2)")
        bad = [p for p in spec.elesquare_after if p not in POSITIONS]
        if bad:
            raise ModelConfigError(f"elesquare_after positions must be among {POSITIONS}, got {bad}")
        if 5 in spec.elesquare_after and variant.square_softmin:
            raise ModelConfigError("elesquare_after=5 and 'ss' would both square the FC output")


def build_from_spec(spec: ModelSpec) -> SquareNet:
    validate_spec(spec)
    model = ARCHS[spec.arch].model(spec)
    if spec.dsop is not None:
        model.attach_dsop(spec.dsop)
    return model


def build_model(
    arch: str,
    variant: str = "gap",
    num_classes: int = 1000,
    *,
    dsop: DSoPSpec | dict[str, Any] | None = None,
    **options: Any,
) -> SquareNet:
    """Build ``arch`` with the DeepSquare modules named by ``variant`` (``"sp+ss+sex"``).

    ``options`` are the other :class:`ModelSpec` fields: ``stem`` ("imagenet" | "cifar"),
    ``dropout``, ``ss_per_class``, ``se_reduction``, ``elesquare_after`` (vanilla_cnn).
    The model keeps its spec in ``model.spec``.
    """
    fields = set(ModelSpec.__dataclass_fields__) - {"arch", "variant", "num_classes", "dsop"}
    unknown = set(options) - fields
    if unknown:
        raise ModelConfigError(
            f"unknown model option(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(fields))}"
        )
    if isinstance(dsop, dict):
        dsop = DSoPSpec(**dsop)
    if "elesquare_after" in options:
        options["elesquare_after"] = tuple(options["elesquare_after"])
    spec = ModelSpec(arch=arch, variant=variant, num_classes=num_classes, dsop=dsop, **options)
    return build_from_spec(spec)


__all__ = ["ARCHS", "ArchInfo", "ModelConfigError", "SquareNet", "build_from_spec", "build_model", "validate_spec"]
