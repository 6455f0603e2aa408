"""The units an int8 export can keep in float: the one list of *unit kinds*, and the keep-float spec.

A unit kind is a slug naming a kind of module (:data:`UNIT_KINDS`); :func:`int8_units` finds the modules of each
kind in a deploy model (``named_modules`` paths), from the one registry of module kinds,
[KIND_RULES][deepsquare.export.op_map.KIND_RULES]. A keep-float spec (``deepsquare export --keep-float``) is
``auto`` (the measured default of the format, :data:`DEFAULT_KEEP_FLOAT`), ``none``, or comma-separated slugs
and/or module paths; :func:`resolve_keep_float` turns it into the module paths each int8 converter keeps in float
(a path keeps its module and everything under it; the tensors at its boundary may still be (de)quantized).

Torch-free at import: [check_request][deepsquare.export.request.check_request] validates a spec before torch loads.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from .errors import ExportError

AUTO, NONE = "auto", "none"

# slug -> what it is. The module kinds of op_map.KIND_RULES that an int8 converter can keep in float.
UNIT_KINDS: dict[str, str] = {
    "stem": "the model's first convolution (the one on the image)",
    "conv": "the other regular convolutions (k x k, not depthwise)",
    "depthwise": "depthwise convolutions (one filter per channel)",
    "pointwise": "1x1 convolutions (outside SE)",
    "gap": "global average pooling (the plain head)",
    "square-pooling": "Square-Pooling: mean of squares (the sp head)",
    "gem": "GeM pooling with p = 2 (the gem head)",
    "square-excitation": "Square-Excitation attention, each block (sex)",
    "se": "Squeeze-and-Excitation attention with its FCs, each block (se and its variants)",
    "square-encoding": "Square-Encoding, the elementwise square in each block (sen)",
    "classifier": "the final fully connected layer (the logits)",
    "square-softmin": "Square-Softmin after the classifier, folded to -x^2 (ss)",
}
# op_map.KIND_RULES kind -> slug (a kind not listed here is never kept float on its own).
SLUG_OF_KIND: dict[str, str] = {
    "convolution": "conv",
    "depthwise convolution": "depthwise",
    "pointwise convolution": "pointwise",
    "global average pooling": "gap",
    "Square-Pooling": "square-pooling",
    "GeM pooling": "gem",
    "Square-Excitation squeeze": "square-excitation",
    "SE squeeze": "se",
    "Square-Encoding": "square-encoding",
    "classifier": "classifier",
    "Square-Softmin": "square-softmin",
}
# Format -> the slugs kept in float by ``--keep-float auto``: the smallest set measured to reach >= 99% top-1 agreement
# with PyTorch and held-out top-1 within 1 point (digits, 32 px, 364 test images; docs/results/int8.md).
# onnx: ORT's quantizer quantizes the input of Square-Softmin's x*x, i.e. the logits (the classifier's own output
# stays float): ShuffleNetV2 x0.5 ss all-int8 98.9% agreement, -0.8 points; with square-softmin float 99.5%, -0.5.
# All-int8 already met the goal for ShuffleNetV2 x0.5 gap/sp/gem (99.7%) and ResNet-18 gap (100%).
# tflite: the same kind, measured by export/quantize_tflite.py (ss 98.6% all-int8, 99.5% with it float), and SE:
# ShuffleNetV2 x0.5 se all-int8 97.8% agreement (-0.3 points), 100.0% with its SE modules float (the classifier float
# instead: 97.8%). executorch: Square-Excitation (ShuffleNetV2 x0.5 sex all-int8 98.9%, -0.5; it float: 99.7%, -0.3)
# and Square-Softmin (ShuffleNetV2 x0.5 ss all-int8 98.9%, -0.8; it float: 99.7%, -0.3).
DEFAULT_KEEP_FLOAT: dict[str, tuple[str, ...]] = {
    "onnx": ("square-softmin",),
    "tflite": ("square-softmin", "se"),
    "executorch": ("square-excitation", "square-softmin"),
}

_PATH = re.compile(r"^\w+(\.\w+)*$")  # named_modules() spelling: attribute names and indices joined by dots


def _error(message: str) -> Exception:
    return ExportError(message)


def split_spec(spec: str) -> list[str]:
    """The comma-separated names of a keep-float spec, stripped, in order."""
    return [name.strip() for name in spec.split(",")]


def check_keep_float_spec(spec: str) -> None:
    """Refuse a spec that no model can satisfy (ExportError): see :func:`keep_float_problem`."""
    problem = keep_float_problem(spec)
    if problem:
        raise _error(problem)


def keep_float_problem(spec: str) -> str | None:
    """What is wrong with a keep-float spec, torch-free (None: nothing yet): an empty name, an unknown slug,
    ``auto``/``none`` mixed with other names. Names that look like module paths are checked against the model
    later (:func:`resolve_keep_float`)."""
    names = split_spec(spec)
    if names in ([AUTO], [NONE]):
        return None
    for name in names:
        if not name:
            return f"--keep-float {spec!r} has an empty name; valid: auto, none, or {_valid()}"
        if name in (AUTO, NONE):
            return f"--keep-float {name} stands alone, got {spec!r}"
        if name not in UNIT_KINDS and ("-" in name or not _PATH.match(name)):  # slugs have dashes, paths never
            return f"--keep-float: unknown unit kind {name!r}{_close(name, UNIT_KINDS)}; valid: {_valid()}"
    return None


def int8_options_problem(precision: str | None, keep_float: str, sensitivity: bool) -> str | None:
    """What is wrong with ``--keep-float`` / ``--sensitivity`` beside ``--precision`` (None: nothing), torch-free."""
    if keep_float != AUTO and sensitivity:
        return "--sensitivity chooses what stays float itself: give it or --keep-float, not both"
    if precision != "int8" and (keep_float != AUTO or sensitivity):
        flag = "--sensitivity" if sensitivity else f"--keep-float {keep_float}"
        return f"{flag} applies to int8 files only: add --precision int8"
    return keep_float_problem(keep_float)


def _valid() -> str:
    return f"{', '.join(UNIT_KINDS)} or module paths (stage2.0.branch2.3)"


def _close(name: str, candidates: Any) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(matches)}?)" if matches else ""


def unwrap(model: Any) -> Any:
    """The classifier inside a ``--input uint8`` prologue (export/prologue.py): paths are relative to it."""
    from .prologue import PixelPrologue

    return model.model if isinstance(model, PixelPrologue) else model


def int8_units(model: Any) -> dict[str, list[str]]:
    """Slug -> module paths of that kind in ``model`` (a deploy model, or a PixelPrologue around one), the kinds
    the model has in :data:`UNIT_KINDS` order, paths in ``named_modules`` order. A module inside a unit of
    another kind (the FCs of an SE) belongs to that unit only."""
    from torch import nn

    from .op_map import kind_of

    model = unwrap(model)
    modules = dict(model.named_modules())
    found: dict[str, list[str]] = {slug: [] for slug in UNIT_KINDS}
    convs = [path for path, module in modules.items() if isinstance(module, nn.Conv2d)]
    linears = [path for path, module in modules.items() if isinstance(module, nn.Linear)]
    for path in modules:
        if not path:
            continue
        slug = SLUG_OF_KIND.get(kind_of(modules, path, "", False))
        if slug == "classifier" and path != linears[-1]:
            slug = None  # only the last Linear is the classifier
        if convs and path == convs[0] and slug in ("conv", "pointwise", "depthwise"):
            slug = "stem"
        if slug is not None:
            found[slug].append(path)
    return {slug: paths for slug, paths in found.items() if paths}


def resolve_keep_float(model: Any, spec: str, fmt: str) -> tuple[str, ...]:
    """The module paths of ``model`` (without a uint8 prologue) a ``fmt`` int8 export keeps in float for ``spec``:
    ``none`` -> (), ``auto`` -> :data:`DEFAULT_KEEP_FLOAT` of ``fmt``, else slugs and/or module paths.
    A path under another kept path is dropped (already float); ExportError for a name the model lacks."""
    check_keep_float_spec(spec)
    names = split_spec(spec)
    if names == [NONE]:
        return ()
    if names == [AUTO]:
        names = list(DEFAULT_KEEP_FLOAT.get(fmt, ()))
    model = unwrap(model)
    units = int8_units(model)
    modules = [path for path, _ in model.named_modules() if path]
    chosen: set[str] = set()
    for name in names:
        if name in UNIT_KINDS:
            chosen.update(units.get(name, []))
        elif name in modules:
            chosen.add(name)
        else:
            hint = _close(name, [*UNIT_KINDS, *modules])
            raise _error(
                f"--keep-float: {name!r} is neither a unit kind nor a module of this model{hint}; "
                f"unit kinds: {', '.join(UNIT_KINDS)}; this model's kinds: {', '.join(units) or 'none'}"
            )
    kept = [path for path in modules if path in chosen]  # model order
    return tuple(path for path in kept if not any(is_under(path, other) for other in kept if other != path))


def is_under(path: str | None, kept: str) -> bool:
    """Whether module ``path`` is ``kept`` or inside it (``""`` is the whole model)."""
    if path is None:
        return False
    return kept == "" or path == kept or path.startswith(kept + ".")


def under_any(path: str | None, kept: tuple[str, ...]) -> bool:
    """Whether module ``path`` is one of ``kept`` or inside one."""
    return any(is_under(path, k) for k in kept)
