"""Checkpoints written directly in deepsquare train's format, for the export tests."""

from pathlib import Path

import torch

from deepsquare.train import build_model
from deepsquare.train.checkpoint import save_checkpoint
from deepsquare.train.data import SYNTHETIC_CLASSES, load_data
from deepsquare.train.layers import SquareSoftmin


def write_checkpoint(
    folder: Path, arch: str, variant: str, dsop: dict | None = None, size: int = 32, stem: str = "cifar"
) -> Path:
    """A model with moved BN statistics and a non-trivial Square-Softmin scale, saved as a checkpoint."""
    torch.manual_seed(0)
    model = build_model(arch, variant, num_classes=10, stem=stem, dropout=0.2, dsop=dsop)
    data = load_data("synthetic:64", size)
    mean, std = torch.tensor(data.mean).view(1, 3, 1, 1), torch.tensor(data.std).view(1, 3, 1, 1)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # BN running statistics move away from (0, 1)
            model((data.train.images[:32] - mean) / std)
        for module in model.modules():
            if isinstance(module, SquareSoftmin):
                module.scale.fill_(0.37)
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(
        folder / f"{arch}-{variant}{'-dsop' if dsop else ''}.ckpt",
        {
            "spec": model.spec.to_dict(),
            "state_dict": model.state_dict(),
            "classes": SYNTHETIC_CLASSES,
            "input_size": size,
            "mean": list(data.mean),
            "std": list(data.std),
            "data": "synthetic:64",
            "epoch": 1,
        },
    )


class DiesWhenUnpickled(torch.nn.Module):
    """Stands in for a converter that crashes its process: unpickling it in a worker kills that worker."""

    def __setstate__(self, state: dict) -> None:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
