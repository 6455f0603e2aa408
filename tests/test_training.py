"""deepsquare train: determinism, resume after SIGKILL, divergence stop, checkpoint safety, bad input."""

import csv
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from deepsquare.train.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from deepsquare.train.data import load_data
from deepsquare.train.trainer import TrainConfig, TrainingError, train

TINY = {
    "arch": "vanilla_cnn",
    "variant": "sp+ss",
    "data": "synthetic:256",
    "batch_size": 32,
    "input_size": 16,
    "lr": 0.05,
}


def train_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsquare.train", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return Checkpoint.load(path).state_dict


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_two_runs_with_the_same_seed_give_identical_weights(tmp_path: Path) -> None:
    a = train(TrainConfig(**TINY, epochs=2, out=str(tmp_path / "a")), quiet=True)
    b = train(TrainConfig(**TINY, epochs=2, out=str(tmp_path / "b")), quiet=True)
    assert_same_weights(a, b)
    c = train(TrainConfig(**TINY, epochs=2, seed=1, out=str(tmp_path / "c")), quiet=True)
    assert not torch.equal(weights(a)["fc.weight"], weights(c)["fc.weight"])


def test_outputs_metrics_and_checkpoint_contents(tmp_path: Path, monkeypatch) -> None:
    import deepsquare.train.trainer as trainer

    evaluated: list[int] = []  # the size of every split evaluated, in order
    real_evaluate = trainer.evaluate

    def spy(model, split, *args, **kwargs):
        evaluated.append(len(split))
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", spy)
    cfg = TrainConfig(**TINY, epochs=2, out=str(tmp_path), dsop_stages=("layer2", "layer3"), dsop_dim=8)
    path = train(cfg, quiet=True)
    # val after each epoch (64 images), then the 500 held-out test images only after the last: the final model,
    # and best.ckpt only when it is another epoch's
    best_epoch = Checkpoint.load(tmp_path / "best.ckpt").epoch
    assert evaluated == [64, 64, 500] + ([500] if best_epoch != 2 else [])
    assert path == tmp_path / "model.ckpt"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.ckpt",
        "last.ckpt",
        "metrics.csv",
        "model.ckpt",
    ]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for column in (
        "train_loss_main",
        "train_loss_dsop_layer2",
        "train_loss_dsop_layer3",
        "val_top1",
        "val_top5",
        "lr",
        "images_per_s",
    ):
        assert all(float(r[column]) >= 0 for r in rows), column
    # the total is alpha*main + 0.2*layer2 + 0.3*layer3 (the default betas for two branches)
    r = rows[0]
    total = (
        float(r["train_loss_main"])
        + 0.2 * float(r["train_loss_dsop_layer2"])
        + 0.3 * float(r["train_loss_dsop_layer3"])
    )
    assert float(r["train_loss"]) == pytest.approx(total, rel=1e-4)
    # the test split is reported once, in the last row; earlier rows have no test figures
    assert [r["test_top1"] for r in rows][:-1] == [""] and 0 <= float(rows[-1]["test_top1"]) <= 100
    ckpt = Checkpoint.load(path)
    test = ckpt.extra["test"]
    assert test["split"] == "test" and test["images"] == 500 and test["best"]["epoch"] == best_epoch
    assert test["final"]["test_top1"] == ckpt.metrics[-1]["test_top1"] == float(rows[-1]["test_top1"])
    assert Checkpoint.load(tmp_path / "best.ckpt").extra["test"] == test
    assert ckpt.classes == [f"grating_{d}deg" for d in range(0, 180, 18)]
    assert ckpt.input_size == 16 and len(ckpt.mean) == len(ckpt.std) == 3
    assert ckpt.spec.dsop.stages == ("layer2", "layer3") and ckpt.spec.variant == "sp+ss"
    assert ckpt.epoch == 2 and ckpt.provenance["torch"] == torch.__version__
    model = ckpt.build_model()
    assert isinstance(model(torch.randn(1, 3, 16, 16)), torch.Tensor)


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    args = [
        "--arch",
        "vanilla_cnn",
        "--variant",
        "sp",
        "--data",
        "synthetic:400",
        "--batch-size",
        "16",
        "--input-size",
        "16",
        "--lr",
        "0.05",
        "--epochs",
        "4",
    ]
    full = train_cli(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepsquare.train", "--quiet", *args, "--out", str(killed_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while not (killed_dir / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-epoch 2 (or later): the process gets no chance to clean up
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed_dir / "model.ckpt").exists()
    epoch_at_kill = Checkpoint.load(killed_dir / "last.ckpt").epoch
    assert epoch_at_kill < 4
    resumed = train_cli(*args, "--out", str(killed_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {killed_dir / 'last.ckpt'} after epoch {epoch_at_kill}" in resumed.stdout
    assert_same_weights(tmp_path / "full" / "model.ckpt", killed_dir / "model.ckpt")


def test_non_finite_loss_stops_with_the_last_good_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    args = {**TINY, "data": "synthetic:64", "out": str(tmp_path)}
    train(TrainConfig(**args, epochs=1), quiet=True)
    before = (tmp_path / "last.ckpt").read_bytes()

    def poisoned(spec: str, size: int, seed: int = 0):
        data = load_data(spec, size, seed)
        data.train.images[::2] = float("inf")  # every batch now holds an inf image
        return data

    monkeypatch.setattr("deepsquare.train.run_state.load_data", poisoned)
    message = (
        rf"non-finite loss .* at epoch 2, step 1 .*last good checkpoint {tmp_path / 'last.ckpt'} .epoch 1. is intact"
    )
    with pytest.raises(TrainingError, match=message):
        train(TrainConfig(**args, epochs=3), quiet=True, resume=True)
    assert (tmp_path / "last.ckpt").read_bytes() == before
    assert Checkpoint.load(tmp_path / "last.ckpt").epoch == 1
    assert (tmp_path / "model.ckpt").read_bytes() == before  # the first run's final model, untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_real_divergence_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    # Quartic SP+SS logits with an absurd learning rate and no clipping: inf within a few steps.
    result = train_cli(
        "--arch",
        "vanilla_cnn",
        "--variant",
        "sp+ss",
        "--data",
        "synthetic:256",
        "--input-size",
        "16",
        "--epochs",
        "3",
        "--lr",
        "1e6",
        "--clip-grad",
        "0",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert result.stderr.startswith("deepsquare train: error: non-finite loss") and "Traceback" not in result.stderr
    assert "no checkpoint had been written yet" in result.stderr or "is intact" in result.stderr
    assert not (tmp_path / "model.ckpt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "resnet19"], "unknown arch 'resnet19'"),
        (["--variant", "sp+gap"], "two poolings"),
        (["--data", "imagefolder:/nonexistent"], "image folder /nonexistent/train does not exist"),
        (["--data", "cifar10:/nonexistent"], "cifar10 folder /nonexistent does not exist"),
        (["--data", "mnist"], "unknown --data 'mnist'"),
        (["--dsop", "layer9"], "layer9 do not exist"),
        (["--out", "/proc/deepsquare"], "cannot write to --out /proc/deepsquare"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--resume", "--out", "/tmp/deepsquare-no-such-run"], "no /tmp/deepsquare-no-such-run/last.ckpt"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    base = ["--data", "synthetic:64", "--input-size", "16"] if "--data" not in args else []
    result = train_cli("--arch", "vanilla_cnn", *base, *args) if "--arch" not in args else train_cli(*base, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepsquare train: error: ") and message in lines[0], lines


def make_image_folder(root: Path, classes: dict[str, int]) -> None:
    from PIL import Image

    for split in ("train", "val"):
        for i, (name, count) in enumerate(classes.items()):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for j in range(count):
                Image.new("RGB", (20, 24), (40 * i, 10 * j, 200)).save(root / split / name / f"{j}.png")


def test_image_folder_errors_name_the_problem(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "ok", {"cat": 3, "dog": 3})
    data = load_data(f"imagefolder:{tmp_path / 'ok'}", 16)
    assert data.classes == ["cat", "dog"] and data.train.images.shape == (6, 3, 16, 16)
    assert data.test is None and "no test/ folder" in data.no_test_reason and "only val" in data.no_test_reason
    (tmp_path / "ok" / "val").rename(tmp_path / "ok" / "test")  # a test/ folder is the held-out split
    make_image_folder(tmp_path / "ok", {"cat": 1, "dog": 1})
    data = load_data(f"imagefolder:{tmp_path / 'ok'}", 16)
    assert len(data.test) == 6 and len(data.val) == 2 and data.test.labels.tolist() == [0, 0, 0, 1, 1, 1]
    make_image_folder(tmp_path / "empty_class", {"cat": 3, "dog": 0})
    result = train_cli("--data", f"imagefolder:{tmp_path / 'empty_class'}")
    assert result.returncode == 1 and "class folder" in result.stderr and "has no images" in result.stderr
    make_image_folder(tmp_path / "broken", {"cat": 3, "dog": 3})
    (tmp_path / "broken" / "train" / "dog" / "1.png").write_bytes(b"not a png")
    result = train_cli("--data", f"imagefolder:{tmp_path / 'broken'}")
    assert result.returncode == 1 and "cannot read image" in result.stderr and "1.png" in result.stderr
    (tmp_path / "nothing" / "train").mkdir(parents=True)
    result = train_cli("--data", f"imagefolder:{tmp_path / 'nothing'}")
    assert result.returncode == 1 and "has no class subfolders" in result.stderr


def test_cifar_batches_load_and_a_code_carrying_batch_is_refused(tmp_path: Path) -> None:
    import numpy as np

    root = tmp_path / "cifar"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (root / name).write_bytes(pickle.dumps(batch))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    data = load_data(f"cifar10:{root}", 32)
    # val: a tenth of every class of the training batches (at least one), fixed; test: the official test batch
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 4) and data.classes[3] == "c3"
    assert sorted(data.val.labels.tolist()) == [0, 1, 2, 3] and data.train.images.shape[1:] == (3, 32, 32)
    assert torch.equal(data.val.images, load_data(f"cifar10:{root}", 32, seed=5).val.images)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (root / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    result = train_cli("--data", f"cifar10:{root}")
    assert result.returncode == 1 and "refusing to load" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_checkpoint_loading_refuses_bad_files_without_running_them(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.load(tmp_path / "missing.ckpt")
    (tmp_path / "random.ckpt").write_bytes(os.urandom(2048))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Checkpoint.load(tmp_path / "random.ckpt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "state_dict.pt")
    with pytest.raises(CheckpointError, match=r"not a deepsquare checkpoint .found a plain state dict"):
        Checkpoint.load(tmp_path / "state_dict.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"format": "deepsquare-checkpoint", "payload": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(
        CheckpointError, match=r"pickled objects that safe loading refuses .it was not run.: it wants posix.system$"
    ):
        Checkpoint.load(tmp_path / "evil.ckpt")
    assert not (tmp_path / "pwned").exists()


def test_truncated_checkpoint_is_refused_and_atomic_save_leaves_no_temp(tmp_path: Path) -> None:
    path = train(TrainConfig(**TINY, epochs=1, out=str(tmp_path)), quiet=True)
    data = path.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        Checkpoint.load(tmp_path / "cut.ckpt")
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "x.ckpt", {"spec": {}})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def content_hashes(images: torch.Tensor) -> set[str]:
    import hashlib

    return {hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images}


@pytest.mark.parametrize("spec", ["synthetic:200", "digits"])
def test_the_test_split_is_held_out_fixed_and_deterministic(spec: str) -> None:
    data = load_data(spec, 16)
    hashes = {name: content_hashes(split.images) for name, split in data.splits().items()}
    assert set(hashes) == {"train", "val", "test"}
    assert all(len(h) == len(data.splits()[name]) for name, h in hashes.items())  # no image twice in a split
    assert not hashes["test"] & hashes["train"] and not hashes["test"] & hashes["val"]
    assert not hashes["train"] & hashes["val"]
    again, other_seed = load_data(spec, 16), load_data(spec, 16, seed=7)
    for name, split in data.splits().items():
        same = again.splits()[name]
        assert torch.equal(split.images, same.images) and torch.equal(split.labels, same.labels)
    # the seed changes what trains, never what tests
    assert torch.equal(data.test.images, other_seed.test.images)
    assert not torch.equal(data.train.images[:10], other_seed.train.images[:10])
    assert not content_hashes(other_seed.train.images) & hashes["test"]
    counts = torch.bincount(data.test.labels, minlength=10)
    assert counts.min() > 0 and counts.max() - counts.min() <= 3  # every class, in about equal numbers


def test_digits_is_real_data_upscaled() -> None:
    data = load_data("digits", 24)
    assert len(data.train) + len(data.val) + len(data.test) == 1797 and 350 < len(data.test) < 370
    assert data.train.images.shape[1:] == (3, 24, 24) and data.classes == [str(d) for d in range(10)]
    assert data.train.images.min() >= 0 and data.train.images.max() <= 1


def test_synthetic_size_option_and_its_errors() -> None:
    data = load_data("synthetic:40", 16)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 500)  # N keeps its meaning: train images
    assert torch.equal(data.train.images, load_data("synthetic:40", 16).train.images)  # deterministic
    with pytest.raises(ValueError, match="needs an image count N >= 10"):
        load_data("synthetic:abc", 16)


def test_progress_bar_shows_epoch_loss_and_throughput(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.train",
            "--arch",
            "vanilla_cnn",
            "--data",
            "synthetic:64",
            "--input-size",
            "16",
            "--batch-size",
            "16",
            "--epochs",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout and "loss=" in result.stdout and "img_s=" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "model.ckpt")


def test_bench_dsop_prints_the_ratio() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.export.commands",
            "bench",
            "dsop",
            "--arch",
            "vanilla_cnn",
            "--variant",
            "sp",
            "--dsop",
            "layer3",
            "--dsop-dim",
            "8",
            "--batch-size",
            "4",
            "--runs",
            "2",
            "--warmup",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split()[0] == "plain" and lines[3].split()[0] == "dsop"
    assert int(lines[3].split()[1].replace(",", "")) > int(lines[2].split()[1].replace(",", ""))
    assert lines[-1].startswith("DSoP step / plain step: ") and lines[-1].endswith("x")


def test_an_extended_run_is_tested_once_at_its_new_end(tmp_path: Path) -> None:
    train(TrainConfig(**TINY, epochs=1, out=str(tmp_path)), quiet=True)
    first = Checkpoint.load(tmp_path / "model.ckpt")
    assert first.metrics[-1]["test_top1"] == first.extra["test"]["final"]["test_top1"]
    train(TrainConfig(**TINY, epochs=2, out=str(tmp_path)), quiet=True, resume=True)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [bool(r["test_top1"]) for r in rows] == [False, True]  # the first end's figures are not carried over
    assert "test_top1" not in Checkpoint.load(tmp_path / "model.ckpt").metrics[0]


def test_an_image_folder_without_test_reports_val_only_and_says_so(tmp_path: Path, capsys) -> None:
    make_image_folder(tmp_path / "data", {"cat": 3, "dog": 3})
    cfg = TrainConfig(
        arch="vanilla_cnn",
        data=f"imagefolder:{tmp_path / 'data'}",
        batch_size=2,
        input_size=16,
        epochs=1,
        out=str(tmp_path / "run"),
    )
    ckpt = Checkpoint.load(train(cfg, quiet=True))
    assert "no test split:" in capsys.readouterr().out and ckpt.extra["test"]["split"] is None
    assert "no test/ folder" in ckpt.extra["test"]["note"] and "test_top1" not in ckpt.metrics[-1]


def test_unitwise_clip_caps_each_unit_by_its_weight_norm_and_spares_the_classifier() -> None:
    from deepsquare.train.optim import clip_unitwise_

    torch.manual_seed(0)
    conv, fc = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2)
    params = {"layer.weight": conv.weight, "layer.bias": conv.bias, "fc.weight": fc.weight}
    for p in params.values():
        p.grad = torch.randn_like(p) * 10
    conv.weight.grad[1] = conv.weight[1].detach() * 0.01  # one unit already under the cap
    before = {n: p.grad.clone() for n, p in params.items()}
    clip_unitwise_(params.items(), 0.1)
    unit_w = torch.linalg.vector_norm(conv.weight.detach(), dim=(1, 2, 3))
    unit_g = torch.linalg.vector_norm(conv.weight.grad, dim=(1, 2, 3))
    torch.testing.assert_close(unit_g[[0, 2, 3]], 0.1 * unit_w[[0, 2, 3]])  # capped exactly at the ratio
    assert torch.equal(conv.weight.grad[1], before["layer.weight"][1])  # under the cap: untouched
    # direction kept
    cos = torch.nn.functional.cosine_similarity(conv.weight.grad[0].flatten(), before["layer.weight"][0].flatten(), 0)
    assert cos > 0.9999
    assert torch.all(conv.bias.grad.abs() <= 0.1 * conv.bias.detach().abs().clamp(min=1e-3) + 1e-7)  # element-wise
    assert torch.equal(fc.weight.grad, before["fc.weight"])  # the classifier is not clipped (as in NFNets)
