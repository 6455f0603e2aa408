"""The parity gate of one format: the inputs every format is checked on (a fixed random batch, then real
held-out images), and the check of a staged file in its own runtime against the PyTorch deploy model.

Where a runtime cannot run here (Core ML off macOS) the file's structure is what is checked, and an fp16 file
is judged by the deploy model itself evaluated with float16 numbers.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.bundle import SIDECAR, BundleMeta
from deepsquare.runtime.files import write_text_atomically
from deepsquare.runtime.formats import Format
from deepsquare.runtime.probe import crash_reason
from deepsquare.runtime.runners import RuntimeUnavailable, open_model
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import DataBundle, DataError, load_data

from .parity import ParityResult, compare
from .prologue import as_pixel_images, pixel_batch, random_pixel_images

RANDOM_SAMPLES = 8  # a fixed random batch leads every parity check


@dataclass
class FormatOutcome:
    passed: bool
    reason: str = ""
    parity: ParityResult | None = None
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    outputs: np.ndarray | None = None  # what the runtime returned for the parity inputs


@dataclass
class ParityInputs:
    images: torch.Tensor  # normalized NCHW: RANDOM_SAMPLES random, then the real ones
    description: str
    labels: np.ndarray | None = None  # of the real images: quantized formats report their accuracy
    data: DataBundle | None = None  # the data set they came from (the golden image and the samples: export/golden.py)


def parity_inputs(ckpt: Checkpoint, samples: int, seed: int = 0, pixels: bool = False) -> ParityInputs:
    """A fixed random batch, plus real validation images (held out from training) when the data set loads.

    ``pixels`` (``--input uint8``): every image is made of uint8 pixel levels (random pixels, the real images
    rounded to the nearest level), so the normalized images are exactly what the pixels a uint8 graph is fed
    become: the reference is the PyTorch deploy model on those very pixels."""
    size = ckpt.input_size
    if pixels:
        batch = ckpt.normalize(random_pixel_images(RANDOM_SAMPLES, size, seed))
    else:
        batch = torch.randn(RANDOM_SAMPLES, 3, size, size, generator=torch.Generator().manual_seed(seed))
    if samples == 0:
        return ParityInputs(batch, f"{RANDOM_SAMPLES} random")
    try:
        data = load_data(ckpt.data, size, seed)
    except (DataError, OSError, ValueError):
        return ParityInputs(batch, f"{RANDOM_SAMPLES} random")
    real = as_pixel_images(data.val.images[:samples]) if pixels else data.val.images[:samples]
    description = f"{RANDOM_SAMPLES} random + {len(real)} from {data.name}" + (" (uint8 pixels)" if pixels else "")
    labels = data.val.labels[:samples].numpy()
    return ParityInputs(torch.cat([batch, ckpt.normalize(real)]), description, labels, data)


def emulated_fp16(fmt: Format, deployed: torch.nn.Module, inputs: torch.Tensor, reference: np.ndarray) -> ParityResult:
    """The deploy model with float16 numbers: weights, the input and every layer's output rounded to float16
    (computed in float32, as fast as the reference). What it catches is what breaks fp16 deployments:
    values past 65504 (a squared activation overflows to inf), tiny values flushed to 0, lost precision."""
    model = copy.deepcopy(deployed).float()
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())

    def to_half(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return output.half().float() if isinstance(output, torch.Tensor) else output

    for module in model.modules():
        if not list(module.children()):  # every leaf layer's output is stored in float16
            module.register_forward_hook(to_half)
    with torch.no_grad():
        got = model(inputs.half().float()).numpy()
    return compare(fmt.name, "float16-rounded", "fp16", got, reference)


def verify(
    fmt: Format,
    staging: Path,
    meta: BundleMeta,
    deployed: torch.nn.Module,
    inputs: torch.Tensor,
    reference: np.ndarray,
    precision: str,
    info: dict[str, Any],
    judged: slice,
) -> FormatOutcome:
    """Run the staged file in its runtime against the deploy model's outputs."""
    outcome = FormatOutcome(passed=True, info=info)
    problems = list(info.get("structure_problems", []))
    if not fmt.runs_here():
        outcome.note = f"numeric parity: not run (needs {'macOS' if fmt.runs_on == 'Darwin' else fmt.runs_on})"
        if precision == "fp16":
            # What can be checked here: the deploy model itself, evaluated in float16, against float32.
            outcome.parity = emulated_fp16(fmt, deployed, inputs, reference)
            outcome.note += "; fp16 checked here with the deploy model's weights and activations rounded to float16"
            if not outcome.parity.passed:
                problems.append(f"in float16: {outcome.parity.reason}")
        outcome.passed, outcome.reason = not problems, "; ".join(problems)
        return outcome
    write_text_atomically(staging / SIDECAR, meta.to_json())
    if precision == "int8":  # a quantized file can crash a delegate outright (runtime/probe.py): try it in a child
        crash = crash_reason(fmt.name, staging / fmt.file, asdict(meta), 1, meta.input_size)
        if crash is not None:
            return FormatOutcome(
                False, f"{fmt.runtime} could not run the int8 file: {crash}; export it in fp32", info=info
            )
    try:
        runner = open_model(fmt, staging / fmt.file, meta, 0)
        if meta.formats[fmt.name].input_dtype == "uint8":  # the pixels the inputs were made of, as apps feed them
            got = runner.run_pixels(pixel_batch(inputs, meta.mean, meta.std).numpy())
        else:
            got = runner.run(inputs.numpy())
    except RuntimeUnavailable as exc:
        outcome.note = f"numeric parity: not run ({exc})"
        outcome.passed, outcome.reason = not problems, "; ".join(problems)
        return outcome
    except Exception as exc:  # the runtime rejects the model: this format fails
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return FormatOutcome(False, f"{fmt.runtime} could not run it: {first}", info=info)
    outcome.outputs = got
    expected = reference if fmt.outputs == "logits" else torch.softmax(torch.from_numpy(reference), 1).numpy()
    outcome.parity = compare(fmt.name, fmt.runtime, precision, got[judged], expected[judged])
    if not outcome.parity.passed:
        problems.append(outcome.parity.reason)
    outcome.passed, outcome.reason = not problems, "; ".join(problems)
    return outcome


def held_out_accuracy(got: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 of the exported model and of the fp32 deploy model on the real (validation) images."""
    real = slice(RANDOM_SAMPLES, None)
    exported = float(np.mean(got[real].argmax(1) == labels))
    fp32 = float(np.mean(reference[real].argmax(1) == labels))
    return {"images": len(labels), "top1": exported, "top1_fp32": fp32, "delta_points": 100 * (exported - fp32)}
