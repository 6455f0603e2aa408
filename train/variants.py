"""Parsing of ``+``-joined variant names (``sp+ss+sex``) into one validated description."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

POOLINGS = {
    "gap": "global average pooling (plain model)",
    "sp": "Square-Pooling, eq. 20",
    "gem": "GeM pooling with p = 2 (sqrt of Square-Pooling)",
}
HEADS = {"ss": "Square-Softmin after the last FC, eq. 24"}
ATTENTIONS = {
    "sex": "Square-Excitation on each block's main branch, eq. 25",
    "se": "Squeeze-and-Excitation, r = 16",
    "se_slow_squeeze": "SE with the squeeze in two steps (se-variants.txt)",
    "se_slow_excite": "SE with the excitation in two steps (se-variants.txt)",
    "se_slow_both": "SE with slow squeeze and slow excitation (se-variants.txt)",
    "se_bump": "SE with a C/r -> C/r 'bump' layer in the middle (se-variants.txt)",
}
ENCODINGS = {"sen": "Square-Encoding: EleSquare before each block's last spatial conv"}

VALID_NAMES: dict[str, str] = {**POOLINGS, **HEADS, **ATTENTIONS, **ENCODINGS}


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
        if name in POOLINGS:
            if pool is not None:
                raise VariantError(
                    f"variant {text!r} has two poolings ({pool!r} and {name!r}); choose one of {', '.join(POOLINGS)}"
                )
            pool = name
        elif name in ATTENTIONS:
            if attention is not None:
                raise VariantError(
                    f"variant {text!r} has two channel attentions ({attention!r} and {name!r}); "
                    f"choose one of {', '.join(ATTENTIONS)}"
                )
            attention = name
        elif name in HEADS:
            softmin = True
        else:
            encoding = True
    return Variant(pool=pool or "gap", square_softmin=softmin, attention=attention, square_encoding=encoding)
