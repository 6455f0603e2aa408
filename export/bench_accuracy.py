"""Held-out top-1 of each exported file and of the PyTorch model, on the same images, for ``deepsquare bench``.

The images are the held-out split of a ``--data`` spec (its test split; val where the data has none, said so),
turned into 8-bit RGB pixels once: what an app feeds. Every file and the PyTorch reference see the same pixels
(a float file gets them divided by 255 and normalized; a uint8 file gets them as they are), so the per-image
difference between a file and PyTorch is paired, and its interval (``deepsquare.train.stats.paired_difference``:
normal approximation over the per-image differences) covers the sampling of the images only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.bench_cache import BenchCache
from deepsquare.runtime.cold_start import PEAK_RSS, run_child, summarize
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.latency import BenchModel
from deepsquare.runtime.machine import runtime_version
from deepsquare.runtime.quiet import quiet
from deepsquare.runtime.runners import open_model
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import load_data

BATCH = 32


@dataclass
class HeldOut:
    """Held-out images as uint8 RGB pixels ``(N, S, S, 3)`` and their labels, and where they came from."""

    spec: str
    split: str  # "test", or "val" for data without a test split
    pixels: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def describe(self) -> str:
        return f"{len(self.labels)} {self.split} images of --data {self.spec}"


def held_out(spec: str, input_size: int, limit: int | None = None) -> HeldOut:
    """The held-out split of ``spec`` at ``input_size``, the first ``limit`` images (all when None)."""
    data = load_data(spec, input_size)
    split, images = ("test", data.test) if data.test is not None else ("val", data.val)
    count = len(images) if limit is None else min(limit, len(images))
    pixels = (images.images[:count] * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return HeldOut(spec, split, pixels.contiguous().numpy(), images.labels[:count].numpy(), list(data.classes))


def normalized(pixels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """uint8 NHWC pixels as the normalized float NCHW batch a float model takes."""
    x = pixels.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def file_predictions(model: BenchModel, fmt: str, data: HeldOut, threads: int) -> list[int]:
    """Per held-out image: the file's top-1 class."""
    meta = model.meta
    assert meta is not None
    with quiet():
        runner = open_model(FORMATS[fmt], model.files[fmt], meta, threads)
    pixels_in = model.input_dtype(fmt) == "uint8" and hasattr(runner, "run_pixels")
    predicted = []
    for start in range(0, len(data.labels), BATCH):
        chunk = data.pixels[start : start + BATCH]
        scores = runner.run_pixels(chunk) if pixels_in else runner.run(normalized(chunk, meta.mean, meta.std))
        predicted.append(np.asarray(scores).argmax(axis=1))
    return np.concatenate(predicted).astype(int).tolist()


@torch.no_grad()
def torch_predictions(checkpoint: Path, data: HeldOut) -> list[int]:
    """Per held-out image: the top-1 class of the PyTorch model of ``checkpoint`` (as trained, eval mode)."""
    ckpt = Checkpoint.load(checkpoint)
    model = ckpt.build_model()
    predicted = []
    for start in range(0, len(data.labels), BATCH):
        x = torch.from_numpy(normalized(data.pixels[start : start + BATCH], list(ckpt.mean), list(ckpt.std)))
        predicted.append(model(x).argmax(dim=1).numpy())
    return np.concatenate(predicted).astype(int).tolist()


def cached_predictions(
    cache: BenchCache, sha: str, runtime: str, precision: str, data: HeldOut, measure: Any
) -> tuple[list[int], str | None]:
    """``measure()`` or the cached per-image top-1 classes; and when they were measured if from the cache."""
    version = runtime_version(runtime) if runtime != "pytorch" else f"torch {torch.__version__}"
    key = cache.key(
        "predictions",
        sha=sha,
        runtime=version,
        precision=precision,
        data=data.spec,
        split=data.split,
        images=len(data.labels),
        size=int(data.pixels.shape[1]),
    )
    hit = cache.get(key)
    if hit is not None:
        return hit["value"], hit["measured_at"]
    value = measure()
    cache.put(key, value)
    return value, None


TORCH_CHILD = (
    PEAK_RSS
    + """
import json, sys, time
t0 = time.perf_counter()
import torch
from deepsquare.train.checkpoint import Checkpoint
path, threads, size = json.loads(sys.argv[1])
torch.set_num_threads(threads)
t1 = time.perf_counter()
base = peak_rss()
model = Checkpoint.load(path).build_model()
t2 = time.perf_counter()
with torch.no_grad():
    model(torch.zeros(1, 3, size, size))
t3 = time.perf_counter()
peak = peak_rss()
print("COLD " + json.dumps({"import_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3, "first_ms": (t3 - t2) * 1e3,
                            "base_rss": base, "peak_rss": peak}))
"""
)


def torch_cold_start(checkpoint: Path, threads: int, input_size: int, starts: int) -> dict[str, Any]:
    """The PyTorch reference's cold start: import torch, load the checkpoint, build the model, one forward pass."""
    payload = [str(checkpoint), threads, input_size]
    return summarize([run_child(TORCH_CHILD, payload) for _ in range(max(1, starts))])
