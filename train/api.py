"""``deepsquare.train(...)``: train a classifier from Python, as ``deepsquare train`` does from the shell."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .config import TrainConfig

# What a resumed run keeps from its first start: given explicitly with resume, they must agree (setting -> flag).
RESUME_MUST_MATCH = {
    "arch": "--arch",
    "variant": "--variant",
    "data": "--data",
    "input_size": "--input-size",
    "dsop_stages": "--dsop",
    "seed": "--seed",
    "stem": "--stem",
}


@dataclass
class TrainResult:
    """What a training run left: the checkpoint to export, and its per-epoch metrics."""

    checkpoint: Path  # OUT/model.ckpt, the final model (OUT/best.ckpt is the best by val top-1)
    out: Path
    metrics: list[dict[str, str]] = field(default_factory=list)  # OUT/metrics.csv, one row per epoch

    @property
    def final(self) -> dict[str, str]:
        """The last epoch's row (with ``test_top1`` / ``test_top5`` when the data has a test split)."""
        return self.metrics[-1] if self.metrics else {}


def train(
    config: TrainConfig | None = None, /, *, quiet: bool = True, resume: bool = False, **settings: Any
) -> TrainResult:
    """Train a DeepSquare / DSoP classifier and write ``OUT/model.ckpt``, ``best.ckpt``, ``last.ckpt``, ``metrics.csv``.

    Args:
        config: a full ``TrainConfig`` (``deepsquare.train.config``); or give its fields as keywords instead.
        quiet: one log line per epoch instead of a progress bar (the default here: notebooks).
        resume: continue from ``OUT/last.ckpt`` with its recipe (``epochs`` may grow).
        **settings: ``TrainConfig`` fields: ``arch``, ``variant``, ``data``, ``out``, ``epochs``, ``batch_size``,
            ``input_size``, ``lr``, ``dropout``, ``dsop_stages`` (a tuple or a comma string), ``seed``, ...

    Returns:
        The run's files ([TrainResult][deepsquare.train.api.TrainResult]); ``.checkpoint`` is what
        ``deepsquare.export`` takes.

    Raises:
        TypeError: an unknown setting. ``TrainingError``, ``DataError``, ``CheckpointError``: what the trainer refuses
            (each names the setting), a non-finite loss (the last good checkpoint is kept).

    Examples:
        >>> import deepsquare as ds
        >>> run = ds.train(arch="vanilla_cnn", variant="sp+ss", data="synthetic:200", epochs=1, out="runs/api")
        >>> run.checkpoint
        PosixPath('runs/api/model.ckpt')
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if config is not None and settings:
        raise TypeError("give a TrainConfig or keyword settings, not both")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}  # the checkpoint stores text
    if isinstance(settings.get("dsop_stages"), str):
        settings["dsop_stages"] = tuple(s.strip() for s in settings["dsop_stages"].split(",") if s.strip())
    config = config or TrainConfig(**settings)
    # An explicit setting must agree with the run it resumes (the command line's rule).
    explicit = tuple(name for name in settings if name in RESUME_MUST_MATCH)
    return run_and_collect(config, quiet=quiet, resume=resume, must_match=explicit)


def run_and_collect(config: TrainConfig, *, quiet: bool, resume: bool, must_match: tuple[str, ...]) -> TrainResult:
    """Train (the command line's path too) and read back what the run wrote."""
    from .trainer import train as run_training  # torch: imported by the call, not by `import deepsquare`

    checkpoint = Path(run_training(config, quiet=quiet, resume=resume, must_match=must_match))
    out = Path(config.out)
    metrics_path = out / "metrics.csv"
    metrics = list(csv.DictReader(metrics_path.open())) if metrics_path.is_file() else []
    return TrainResult(checkpoint=checkpoint, out=out, metrics=metrics)
