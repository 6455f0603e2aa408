"""Serializable descriptions of a model: enough to rebuild it without any training config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .variants import Variant, parse_variant

MAX_CLASSES = 1_000_000  # far above any real label set; a larger head is a corrupt spec, not a model


@dataclass(frozen=True)
class DSoPSpec:
    """Detachable second-order pooling branches (DSoP, arXiv:2006.00809, sec. III).

    ``stages`` names backbone stages (``layer1``..``layer4`` for ResNet, ``stage2``..``stage4``
    for ShuffleNetV2, ``layer1``..``layer3`` for the vanilla CNN). Each branch: ``blocks``
    blocks of the backbone's kind at the stage's resolution, a 1x1 conv + BN + ReLU down to
    ``dim`` channels, iSQRT-COV with ``iterations`` steps, the upper triangle, ``dropout``,
    and an FC to the class logits. ``loss_weights`` are the betas (one per stage; the
    paper's small-data default rises 0.1/0.2/0.3 from early to late), ``main_weight`` alpha.
    """

    stages: tuple[str, ...]
    blocks: int = 1
    dim: int = 64
    iterations: int = 5
    dropout: float = 0.5
    loss_weights: tuple[float, ...] = ()
    main_weight: float = 1.0

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        if not stages:
            raise ValueError("a DSoP spec needs at least one stage")
        if len(set(stages)) != len(stages):
            raise ValueError(f"DSoP stages repeat: {stages}")
        weights = tuple(float(w) for w in self.loss_weights) or default_branch_weights(len(stages))
        object.__setattr__(self, "loss_weights", weights)
        if len(weights) != len(stages):
            raise ValueError(f"DSoP has {len(stages)} stages but {len(weights)} loss weights")
        if self.blocks < 0 or self.dim < 1 or self.iterations < 1 or not 0 <= self.dropout < 1:
            raise ValueError(
                "DSoP needs blocks >= 0, dim >= 1, iterations >= 1 and 0 <= dropout < 1, "
                f"got blocks={self.blocks}, dim={self.dim}, iterations={self.iterations}, "
                f"dropout={self.dropout}"
            )


def default_branch_weights(n: int) -> tuple[float, ...]:
    """The paper's small-data betas: 0.1, 0.2, 0.3 from early to late (0.3 for any later)."""
    late = (0.1, 0.2, 0.3)[-min(n, 3) :] if n else ()
    return (0.1,) * max(0, n - 3) + late


@dataclass(frozen=True)
class ModelSpec:
    """Everything :func:`deepsquare.train.build_model` needs; stored in every checkpoint."""

    arch: str
    variant: str = "gap"
    num_classes: int = 1000
    stem: str = "imagenet"
    dropout: float = 0.0
    ss_per_class: bool = False
    se_reduction: int = 16
    elesquare_after: tuple[int, ...] = ()
    dsop: DSoPSpec | None = None

    @property
    def parsed_variant(self) -> Variant:
        return parse_variant(self.variant)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["elesquare_after"] = list(self.elesquare_after)
        if self.dsop is not None:
            out["dsop"]["stages"] = list(self.dsop.stages)
            out["dsop"]["loss_weights"] = list(self.dsop.loss_weights)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model spec has unknown fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        expected = {
            "arch": str,
            "variant": str,
            "stem": str,
            "num_classes": int,
            "se_reduction": int,
            "dropout": (int, float),
            "ss_per_class": bool,
        }
        for name, kind in expected.items():
            value = values.get(name)
            if name in values and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                raise ValueError(f"{name} must be {getattr(kind, '__name__', 'a number')}, got {value!r}")
        if not 1 <= values.get("num_classes", 1) <= MAX_CLASSES:
            raise ValueError(f"num_classes must be in 1..{MAX_CLASSES:,}, got {values['num_classes']:,}")
        if values.get("dsop") is not None:
            if not isinstance(values["dsop"], dict):
                raise ValueError(f"dsop must be a mapping, got {type(values['dsop']).__name__}")
            values["dsop"] = DSoPSpec(**values["dsop"])
        values["elesquare_after"] = tuple(values.get("elesquare_after", ()))
        return cls(**values)
