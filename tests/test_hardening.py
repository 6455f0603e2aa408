"""Bad input, by kind: each is one clear line, exit 1, and nothing stale, half-written or wrong is left."""

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint
from PIL import Image

from deepsquare.export import cli as export_cli
from deepsquare.export import commands, publish
from deepsquare.runtime import images as images_module
from deepsquare.runtime.images import ImageError, load_image
from deepsquare.train import cli as train_cli
from deepsquare.train.data import DataError, load_data


def one_error_line(err: str, prog: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), lines
    assert "Traceback" not in err
    return lines[0]


# --- 1. data that lies --------------------------------------------------------------------
def cifar_root(
    tmp_path: Path,
    train_images: int = 10,
    train_labels: int = 10,
    label_max: int = 9,
    shape: tuple[int, ...] = (3072,),
    meta: dict | None = None,
) -> Path:
    root = tmp_path / "cifar"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n: int, labels: int) -> dict:
        return {
            b"data": rng.integers(0, 255, (n, *shape), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, label_max + 1, labels)],
        }

    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(batch(train_images, train_labels)))
    (root / "test_batch").write_bytes(pickle.dumps(batch(10, 10)))
    meta = meta if meta is not None else {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (root / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_images": 100, "train_labels": 7}, "has 100 images but 7 labels"),
        ({"label_max": 12}, "labels outside 0..9"),
        ({"shape": (32, 32, 3)}, "must be an N x 3072 uint8 array"),
        ({"meta": {b"other": 1}}, "has no 'label_names'"),
    ],
)
def test_cifar_batches_that_lie_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_data(f"cifar10:{cifar_root(tmp_path, **kwargs)}", 32)
    assert load_data(f"cifar10:{cifar_root(tmp_path / 'good')}", 8).classes[0] == "c0"


def test_an_image_folder_with_one_class_is_refused(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "cat" / "a.png")
    with pytest.raises(DataError, match=r"one class folder .cat.; a classifier needs at least two"):
        load_data(f"imagefolder:{tmp_path}", 8)


# --- 2. checkpoints whose metadata contradicts the weights ----------------------------------
def edited(tmp_path: Path, name: str, edit) -> Path:
    data = torch.load(write_checkpoint(tmp_path, "vanilla_cnn", "gap"), weights_only=True)
    edit(data)
    torch.save(data, tmp_path / f"{name}.ckpt")
    return tmp_path / f"{name}.ckpt"


def corrupt_a_tensor(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    weight = torch.load(path, weights_only=True)["state_dict"]["fc.weight"].numpy().tobytes()
    at = bytes(raw).find(weight[:64])
    raw[at : at + 64] = bytes(64)  # 64 bytes of one tensor zeroed: the file still loads
    path.write_bytes(bytes(raw))


CHECKPOINT_LIES = {
    "classes empty": (lambda d: d.update(classes=[]), "'classes' has 0 names but the model has 10 outputs"),
    "one class name": (lambda d: d.update(classes=["a"]), "'classes' has 1 names but the model has 10 outputs"),
    "classes a string": (lambda d: d.update(classes="abc"), "'classes' must be a list of class names"),
    "mean one value": (lambda d: d.update(mean=[0.5]), "'mean' must be 3 numbers"),
    "std zero": (lambda d: d.update(std=[0.2, 0.0, 0.2]), "'std' must be positive"),
    "num_classes a string": (lambda d: d["spec"].update(num_classes="10"), "num_classes must be int"),
    "num_classes 10^12": (lambda d: d["spec"].update(num_classes=10**12), "num_classes must be in 1..1,000,000"),
    "input_size 0": (lambda d: d.update(input_size=0), "'input_size' must be a whole number of pixels"),
    "input_size abc": (lambda d: d.update(input_size="abc"), "'input_size' must be a whole number of pixels"),
}


@pytest.mark.parametrize("case", [*CHECKPOINT_LIES, "corrupted tensor"])
def test_checkpoints_that_contradict_their_model_are_not_exported(tmp_path: Path, case: str, capsys) -> None:
    if case == "corrupted tensor":
        path = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
        corrupt_a_tensor(path)
        message = "is corrupt: its weights do not match their sha256 checksum"
    else:
        edit, message = CHECKPOINT_LIES[case]
        path = edited(tmp_path, "bad", edit)
    out = tmp_path / "out"
    assert export_cli.main([str(path), "--to", "onnx", "--out", str(out)]) == 1
    assert message in one_error_line(capsys.readouterr().err, "deepsquare export")
    assert not out.exists() or list(out.iterdir()) == []


# --- 3. images decoded right, or refused ---------------------------------------------------
def test_sixteen_bit_and_float_images_keep_their_brightness(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "grey16.png")
    Image.fromarray(np.full((8, 8), 0.5, np.float32), "F").save(tmp_path / "float.tiff")
    for name in ("grey16.png", "float.tiff"):
        assert load_image(tmp_path / name, 4) == pytest.approx(np.full((4, 4, 3), 128 / 255), abs=1 / 255), name


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((4, 8, 3), np.uint8)
    pixels[:, :4] = 255  # left half white, landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the viewer shows a portrait, white on top
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", exif=exif, quality=100)
    seen = load_image(tmp_path / "photo.jpg", 8)
    assert seen[:2].mean() > 0.9 and seen[-2:].mean() < 0.1


def test_oversize_and_undecodable_images_are_one_line(tmp_path: Path, monkeypatch) -> None:
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")
    monkeypatch.setattr(images_module, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"is 40x40 = 1,600 pixels, over the limit of 1,000; downscale it first"):
        load_image(tmp_path / "big.png", 8)
    (tmp_path / "fake.jpg").write_bytes(os.urandom(100))
    with pytest.raises(ImageError, match="not an image format Pillow knows"):
        load_image(tmp_path / "fake.jpg", 8)


# --- 4. damaged bundles, 7. predict's flags --------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bundle")
    assert (
        export_cli.main(
            [str(write_checkpoint(tmp, "vanilla_cnn", "gap")), "--to", "onnx,tflite", "--out", str(tmp / "export")]
        )
        == 0
    )
    Image.new("RGB", (20, 10), (200, 30, 30)).save(tmp / "photo.png")
    return tmp / "export"


# Every bundle's schema copy, golden self-check and first-screen samples (export/golden.py).
CONTRACT_FILES = ["golden.json", "golden.png", "model.schema.json", "samples", "samples.json"]


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (samples/ included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def damaged(bundle: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    damage(copy)
    return copy


def edit_json(folder: Path, edit) -> None:
    meta = json.loads((folder / "model.json").read_text())
    edit(meta)
    (folder / "model.json").write_text(json.dumps(meta))


BUNDLE_DAMAGE = {
    "truncated onnx": (
        lambda f: (f / "model.onnx").write_bytes((f / "model.onnx").read_bytes()[:500]),
        "onnx",
        "cannot load",
    ),
    "truncated tflite": (
        lambda f: (f / "model.tflite").write_bytes((f / "model.tflite").read_bytes()[:500]),
        "tflite",
        "cannot load",
    ),
    "model.json random bytes": (lambda f: (f / "model.json").write_bytes(os.urandom(64)), "onnx", "is not valid JSON"),
    "classes a number": (lambda f: edit_json(f, lambda m: m.update(classes=3)), "onnx", "classes: 3 is not of type"),
    "input size disagrees": (
        lambda f: edit_json(f, lambda m: m.update(input_size=64)),
        "onnx",
        "takes 32x32 images but model.json says 64",
    ),
    "file outside the bundle": (
        lambda f: edit_json(f, lambda m: m["formats"]["onnx"].update(file="../../x.onnx")),
        "onnx",
        "formats.onnx.file: '../../x.onnx' must be a file or folder directly inside the bundle folder",
    ),
}


@pytest.mark.parametrize("case", BUNDLE_DAMAGE)
def test_damaged_bundles_are_one_line(bundle: Path, tmp_path: Path, case: str, capsys) -> None:
    damage, fmt, message = BUNDLE_DAMAGE[case]
    folder = damaged(bundle, tmp_path, damage)
    assert commands.main(["predict", str(folder), str(bundle.parent / "photo.png"), "--to", fmt]) == 1
    captured = capsys.readouterr()
    assert message in one_error_line(captured.err, "deepsquare predict") and captured.out == ""


PREDICT_FLAGS = [
    (["--top", "0"], "--top must be >= 1"),
    (["--top", "-3"], "--top must be >= 1"),
    (["--threads", "100000"], "--threads must be between 0 and"),
]


@pytest.mark.parametrize(("flags", "message"), PREDICT_FLAGS)
def test_predict_flags_are_checked(bundle: Path, flags: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        commands.main(["predict", str(bundle), str(bundle.parent / "photo.png"), *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_predict_refuses_a_bad_image_before_any_output(bundle: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert commands.main(["predict", str(bundle), str(bundle.parent / "photo.png"), str(tmp_path / "bad.jpg")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot read image" in one_error_line(captured.err, "deepsquare predict")


# --- 5. output folders ---------------------------------------------------------------------
def test_reexport_replaces_the_whole_bundle_and_keeps_the_users_files(bundle: Path, tmp_path: Path) -> None:
    out = damaged(bundle, tmp_path, lambda f: (f / "model.mlpackage").mkdir())  # another model's Core ML
    (out / "notes.txt").write_text("mine")
    ckpt = write_checkpoint(tmp_path / "ck", "vanilla_cnn", "sp")
    assert export_cli.main([str(ckpt), "--to", "onnx", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["export_report.json", "model.json", "model.onnx", "model.onnx.modules.json", "notes.txt", *CONTRACT_FILES]
    )
    assert json.loads((out / "model.json").read_text())["variant"] == "sp"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failed_format_leaves_no_orphan(bundle: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    out = damaged(bundle, tmp_path, lambda f: None)
    before = contents(out)
    monkeypatch.setitem(export_cli_converters(), "tflite", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    assert (
        export_cli.main(
            [
                str(write_checkpoint(tmp_path / "ck", "vanilla_cnn", "gap")),
                "--to",
                "onnx,tflite",
                "--out",
                str(out),
                "--jobs",
                "1",
            ]
        )
        == 1
    )  # the patch lives in this process
    assert contents(out) == before  # all or nothing: the previous bundle stays


def export_cli_converters() -> dict:
    from deepsquare.export.converters import CONVERTERS

    return CONVERTERS


def test_leftovers_of_a_killed_export_are_cleaned_or_restored(bundle: Path, tmp_path: Path) -> None:
    out = damaged(bundle, tmp_path, lambda f: None)
    (tmp_path / ".bundle.staging-abc").mkdir()  # killed while converting
    os.replace(out, tmp_path / ".bundle.previous-xyz")  # killed between the two renames of a swap
    notes = publish.recover(out)
    assert (out / "model.json").exists() and len(notes) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_full_disk_is_one_line_and_the_previous_bundle_stays(
    bundle: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = damaged(bundle, tmp_path, lambda f: None)
    before = contents(out)

    def full(staging, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("deepsquare.export.pipeline.publish", full)
    assert (
        export_cli.main(
            [str(write_checkpoint(tmp_path / "ck", "vanilla_cnn", "sp")), "--to", "onnx", "--out", str(out)]
        )
        == 1
    )
    line = one_error_line(capsys.readouterr().err, "deepsquare export")
    assert "No space left on device" in line and "untouched" in line
    assert contents(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_full_disk_while_training_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch, capsys) -> None:
    args = [
        "--arch",
        "vanilla_cnn",
        "--data",
        "synthetic:64",
        "--input-size",
        "16",
        "--batch-size",
        "32",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert train_cli.main([*args, "--epochs", "1"]) == 0
    before = (tmp_path / "last.ckpt").read_bytes()

    def full(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("deepsquare.train.checkpoint.Checkpoint.save", full)
    assert train_cli.main([*args, "--epochs", "2", "--resume"]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert "No space left on device" in line and "last.ckpt (epoch 1) is intact" in line
    assert (tmp_path / "last.ckpt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- 7. flags of the other commands, 8. answers before noise ---------------------------------
def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("deepsquare.train", ["--seed", "99999999999999999999999"], "--seed must be in 0..9,223,372,036,854,775,807"),
        ("deepsquare.export.cli", ["x.ckpt", "--to", "all,onnx"], "give 'all' alone"),
        ("deepsquare.export.cli", ["x.ckpt", "--to", "onnx", "--samples", "-5"], "--samples must be >= 0"),
        ("deepsquare.export.cli", ["/nonexistent/model.ckpt"], "checkpoint /nonexistent/model.ckpt does not exist"),
        ("deepsquare.export.commands", ["bench", "--variant", "foo"], "unknown variant name 'foo'"),
    ],
)
def test_bad_flags_are_refused_at_once(tmp_path: Path, module: str, args: list[str], message: str) -> None:
    if "x.ckpt" in args:
        args = [str(write_checkpoint(tmp_path, "vanilla_cnn", "gap")) if a == "x.ckpt" else a for a in args]
    result = run(module, *args, *(["--out", str(tmp_path / "out")] if "bench" in args else []))
    assert result.returncode != 0 and result.stdout == ""
    assert message in result.stderr.strip().splitlines()[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "bench.json").exists()


def test_resume_with_another_arch_is_refused(tmp_path: Path, capsys) -> None:
    args = ["--data", "synthetic:64", "--input-size", "16", "--batch-size", "32", "--quiet", "--out", str(tmp_path)]
    assert train_cli.main(["--arch", "vanilla_cnn", *args, "--epochs", "1"]) == 0
    assert train_cli.main(["--arch", "resnet18", *args, "--epochs", "2", "--resume"]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert "--arch 'resnet18' (the run has 'vanilla_cnn')" in line


def test_profile_refuses_binary_logs_and_folder_records(tmp_path: Path, capsys) -> None:
    (tmp_path / "log.bin").write_bytes(bytes(range(256)))
    assert commands.main(["profile", "parse", str(tmp_path / "log.bin")]) == 1
    assert "is not a text log of benchmark_model" in one_error_line(capsys.readouterr().err, "deepsquare profile")
    fixture = Path(__file__).parent / "fixtures" / "benchmark_model" / "android_arm64_cpu_4threads.txt"
    (tmp_path / "a-file").write_text("")
    assert commands.main(["profile", "parse", str(fixture), "--out", str(tmp_path / "a-file")]) == 1
    assert "is a file; give a folder" in one_error_line(capsys.readouterr().err, "deepsquare profile")


def test_the_published_bundle_keeps_the_out_folders_permissions(bundle: Path, tmp_path: Path) -> None:
    out = damaged(bundle, tmp_path, lambda f: None)
    out.chmod(0o755)
    assert (
        export_cli.main(
            [str(write_checkpoint(tmp_path / "ck", "vanilla_cnn", "gap")), "--to", "onnx", "--out", str(out)]
        )
        == 0
    )
    assert out.stat().st_mode & 0o777 == 0o755


def test_exporting_into_the_current_folder_replaces_files_in_place(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    out = damaged(bundle, tmp_path, lambda f: (f / "mine.txt").write_text("mine"))
    inode = out.stat().st_ino
    monkeypatch.chdir(out)  # a shell in --out must not be left in a deleted folder
    assert (
        export_cli.main([str(write_checkpoint(tmp_path / "ck", "vanilla_cnn", "sp")), "--to", "onnx", "--out", "."])
        == 0
    )
    assert out.stat().st_ino == inode
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["export_report.json", "mine.txt", "model.json", "model.onnx", "model.onnx.modules.json", *CONTRACT_FILES]
    )
    assert json.loads((out / "model.json").read_text())["variant"] == "sp"
