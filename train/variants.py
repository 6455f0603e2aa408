"""The module registry, and ``+``-joined variant names (``sp+ss+sex``) parsed once into a :class:`Variant`.

Each row names one module a variant may use, its kind, the paper's equation, the paper (title and
arXiv id) and whether it is one of the DeepSquare modules; blocks receive the row's layer factory.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from .layers import (
    EleSquare,
    GeMPooling,
    GlobalAvgPool,
    SquareExcitation,
    SquarePooling,
    SquareSoftmin,
    SqueezeExcitation,
    se_hidden_widths,
)
from .papers import DEEPSQUARE, GEM, SE, SE_VARIANTS


@dataclass(frozen=True)
class ModuleInfo:
    """One row of the module registry: a name a variant string may use."""

    name: str
    kind: str  # "pooling" (replaces GAP), "head" (after the FC), "attention" (per block), "encoding" (per block)
    summary: str
    equation: str
    paper: str
    deepsquare: bool  # one of the DeepSquare modules
    # pooling/encoding: (); attention: (channels, se_reduction); head: (num_classes, per_class)
    layer: Callable[..., nn.Module]


# Module-level builders bound with functools.partial, not lambdas: a model keeps its factories and must pickle
# (a spawned export worker receives the deploy model whole).
def _squeeze_excitation(kind: str, channels: int, reduction: int) -> nn.Module:
    return SqueezeExcitation(channels, se_hidden_widths(kind, channels, reduction))


def _se(kind: str) -> Callable[[int, int], nn.Module]:
    return partial(_squeeze_excitation, kind)


def _square_excitation(channels: int, reduction: int) -> nn.Module:
    return SquareExcitation()  # parameter-free: neither width nor reduction matters


def _attention(build: Callable[[int, int], nn.Module], reduction: int, channels: int) -> nn.Module:
    return build(channels, reduction)


MODULES: dict[str, ModuleInfo] = {
    row.name: row
    for row in (
        ModuleInfo(
            "gap", "pooling", "global average pooling (plain model)", "G_k = mean_ij F_kij", SE, False, GlobalAvgPool
        ),
        ModuleInfo(
            "sp",
            "pooling",
            "Square-Pooling",
            "eq. 20: G_k = mean_ij F_kij^2 (= M_k^2 + S_k^2, eq. 21)",
            DEEPSQUARE,
            True,
            SquarePooling,
        ),
        ModuleInfo(
            "gem",
            "pooling",
            "GeM pooling with p = 2 (sqrt of Square-Pooling)",
            "G_k = sqrt(mean_ij F_kij^2)",
            GEM,
            False,
            GeMPooling,
        ),
        ModuleInfo(
            "ss",
            "head",
            "Square-Softmin after the last FC",
            "eq. 24: y_k = -|s_k| x_k^2",
            DEEPSQUARE,
            True,
            SquareSoftmin,
        ),
        ModuleInfo(
            "sex",
            "attention",
            "Square-Excitation on each block's main branch",
            "eq. 25: s_k = G_k / (G_k + alpha^2), G = SP(F), F' = s F",
            DEEPSQUARE,
            True,
            _square_excitation,
        ),
        ModuleInfo(
            "se", "attention", "Squeeze-and-Excitation, r = 16", "sigmoid(W2 relu(W1 GAP(F))) F", SE, False, _se("se")
        ),
        ModuleInfo(
            "se_slow_squeeze",
            "attention",
            "SE with the squeeze in two steps",
            "C -> 2C/r -> C/r -> C",
            SE_VARIANTS,
            False,
            _se("se_slow_squeeze"),
        ),
        ModuleInfo(
            "se_slow_excite",
            "attention",
            "SE with the excitation in two steps",
            "C -> C/r -> 2C/r -> C",
            SE_VARIANTS,
            False,
            _se("se_slow_excite"),
        ),
        ModuleInfo(
            "se_slow_both",
            "attention",
            "SE with slow squeeze and slow excitation",
            "C -> 2C/r -> C/r -> 2C/r -> C",
            SE_VARIANTS,
            False,
            _se("se_slow_both"),
        ),
        ModuleInfo(
            "se_bump",
            "attention",
            "SE with a C/r -> C/r 'bump' layer in the middle",
            "C -> C/r -> C/r -> C",
            SE_VARIANTS,
            False,
            _se("se_bump"),
        ),
        ModuleInfo(
            "sen",
            "encoding",
            "Square-Encoding: EleSquare before each block's last spatial conv",
            "t -> t^2 (eq. 14) on the last spatial conv's input",
            DEEPSQUARE,
            True,
            EleSquare,
        ),
    )
}
KINDS = ("pooling", "attention", "encoding", "head")
POOLINGS = {n: m.summary for n, m in MODULES.items() if m.kind == "pooling"}
HEADS = {n: m.summary for n, m in MODULES.items() if m.kind == "head"}
ATTENTIONS = {n: m.summary for n, m in MODULES.items() if m.kind == "attention"}
ENCODINGS = {n: m.summary for n, m in MODULES.items() if m.kind == "encoding"}
VALID_NAMES: dict[str, str] = {n: f"{m.summary}, {m.equation}" for n, m in MODULES.items()}


class VariantError(ValueError):
    """A variant string that names an unknown module or an impossible combination."""


@dataclass(frozen=True)
class Variant:
    pool: str = "gap"
    square_softmin: bool = False
    attention: str | None = None
    square_encoding: bool = False

    @property
    def name(self) -> str:
        """The canonical spelling: pooling, attention, encoding, head; ``gap`` alone if plain."""
        parts = [] if self.pool == "gap" else [self.pool]
        parts += [self.attention] if self.attention else []
        parts += ["sen"] if self.square_encoding else []
        parts += ["ss"] if self.square_softmin else []
        return "+".join(parts) or "gap"

    @property
    def needs_blocks(self) -> bool:
        return self.attention is not None or self.square_encoding

    @property
    def modules(self) -> list[ModuleInfo]:
        names = [
            self.pool,
            self.attention,
            "sen" if self.square_encoding else None,
            "ss" if self.square_softmin else None,
        ]
        return [MODULES[n] for n in names if n is not None]

    @property
    def is_deepsquare(self) -> bool:
        """Uses at least one DeepSquare module (arXiv:1906.04979)."""
        return any(m.deepsquare for m in self.modules)

    def pool_layer(self) -> nn.Module:
        return MODULES[self.pool].layer()

    def attention_layer(self, se_reduction: int = 16) -> Callable[[int], nn.Module] | None:
        """The per-block attention as a factory of the channel count (torchvision's ``norm_layer`` convention)."""
        if self.attention is None:
            return None
        build = MODULES[self.attention].layer
        return partial(_attention, build, se_reduction)

    def encoding_layer(self) -> Callable[[], nn.Module] | None:
        return MODULES["sen"].layer if self.square_encoding else None


def valid_names_help() -> str:
    return "; ".join(f"{k} ({v})" for k, v in VALID_NAMES.items())


def parse_variant(text: str) -> Variant:
    """``"sp+ss+sex"`` -> ``Variant(pool="sp", square_softmin=True, attention="sex")``."""
    if not isinstance(text, str) or not text.strip():
        raise VariantError(f"empty variant; valid names, joined with '+': {', '.join(VALID_NAMES)}")
    names = [n.strip().lower() for n in text.split("+")]
    pool: str | None = None
    attention: str | None = None
    softmin = encoding = False
    seen: set[str] = set()
    for name in names:
        if name not in VALID_NAMES:
            close = difflib.get_close_matches(name, VALID_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise VariantError(
                f"unknown variant name {name!r} in {text!r}{hint}; "
                f"valid names, joined with '+': {', '.join(VALID_NAMES)}"
            )
        if name in seen:
            raise VariantError(f"variant {text!r} names {name!r} twice")
        seen.add(name)
        kind = MODULES[name].kind
        if kind == "pooling":
            if pool is not None:
                raise VariantError(
                    f"variant {text!r} has two poolings ({pool!r} and {name!r}); choose one of {', '.join(POOLINGS)}"
                )
            pool = name
        elif kind == "attention":
            if attention is not None:
                raise VariantError(
                    f"variant {text!r} has two channel attentions ({attention!r} and {name!r}); "
                    f"choose one of {', '.join(ATTENTIONS)}"
                )
            attention = name
        elif kind == "head":
            softmin = True
        else:
            encoding = True
    return Variant(pool=pool or "gap", square_softmin=softmin, attention=attention, square_encoding=encoding)
