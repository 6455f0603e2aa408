"""An export never destroys a good bundle (issue 26): a failure of any kind leaves --out byte for byte, two exports
into one --out do not meet, a linked --out stays a link, and a bundle refuses model files it was not exported with."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from export_helpers import write_checkpoint
from PIL import Image

from deepsquare.export import cli as export_cli
from deepsquare.export import commands, publish
from deepsquare.export import verify as export_verify
from deepsquare.export.bundle_lock import lock_path
from deepsquare.export.converters import CONVERTERS
from deepsquare.runtime.bundle import BundleError, load_bundle, model_sha256
from deepsquare.runtime.runners import open_runner

PROG = "deepsquare export"


def one_error_line(err: str, prog: str = PROG) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), lines
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path under ``folder`` with its bytes (files), its target (links) or "dir"."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            found[name] = "dir"
        else:
            found[name] = path.read_bytes()
    return found


def hidden(folder: Path) -> list[str]:
    """Staging folders, lock files, temporary files: nothing of the kind may stay behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A complete ONNX bundle of vanilla_cnn gap (input 32), with a photo beside it."""
    tmp = tmp_path_factory.mktemp("good")
    ckpt = write_checkpoint(tmp, "vanilla_cnn", "gap")
    assert export_cli.main([str(ckpt), "--to", "onnx", "--out", str(tmp / "export"), "-q"]) == 0
    Image.new("RGB", (20, 10), (200, 30, 30)).save(tmp / "photo.png")
    return tmp / "export"


def full_bundle(good: Path, tmp_path: Path) -> Path:
    """A copy of the good bundle plus the files of formats an ONNX-only export never asks about, and a user's file."""
    out = tmp_path / "bundle"
    shutil.copytree(good, out)
    (out / "model.tflite").write_bytes(b"TFL3" + os.urandom(64))
    (out / "model.pte").write_bytes(os.urandom(64))
    (out / "model.mlpackage" / "Data").mkdir(parents=True)
    (out / "model.mlpackage" / "Data" / "weights.bin").write_bytes(os.urandom(64))
    (out / "notes").mkdir()
    (out / "notes" / "mine.txt").write_text("mine")
    return out


def checkpoint(tmp_path: Path, variant: str = "sp") -> str:
    return str(write_checkpoint(tmp_path / "ck", "vanilla_cnn", variant))


# --- 1. a failed export leaves --out byte for byte ------------------------------------------------
def test_a_failed_gate_leaves_the_bundle_byte_for_byte(good: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    out = full_bundle(good, tmp_path)
    before = snapshot(out)
    real = export_verify.compare
    monkeypatch.setattr(export_verify, "compare", lambda f, r, p, got, ref: real(f, r, p, got * 1.01, ref))
    assert export_cli.main([checkpoint(tmp_path), "--to", "onnx", "--out", str(out), "--jobs", "1"]) == 1
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "onnx failed: " in line and "exceeds" in line and f"previous content of {out} is untouched" in line
    assert snapshot(out) == before
    beside = tmp_path / "bundle.failed-export_report.json"  # the failed attempt's report, printed
    assert f"report: {beside} (" in captured.out
    assert not json.loads(beside.read_text())["formats"]["onnx"]["passed"]
    assert hidden(tmp_path) == [] and hidden(out) == []
    # the next export that passes publishes and removes the stale report of the failed one
    monkeypatch.undo()
    assert export_cli.main([checkpoint(tmp_path), "--to", "onnx", "--out", str(out), "-q"]) == 0
    assert not beside.exists() and json.loads((out / "model.json").read_text())["variant"] == "sp"
    assert sorted(p.name for p in out.iterdir()) == [
        "export_report.json",
        "golden.json",
        "golden.png",
        "model.json",
        "model.onnx",
        "model.onnx.modules.json",
        "model.schema.json",
        "notes",
        "samples",
        "samples.json",
    ]


def test_one_failed_format_of_two_publishes_nothing(good: Path, tmp_path: Path, monkeypatch) -> None:
    from deepsquare.export.api import ExportFailed, export

    out = full_bundle(good, tmp_path)
    before = snapshot(out)
    monkeypatch.setitem(CONVERTERS, "tflite", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(ExportFailed, match="export failed for tflite") as failure:
        export(checkpoint(tmp_path), to="onnx,tflite", out=out, jobs=1, log=None)
    result = failure.value.result
    assert result.files == {} and result.parity["onnx"]["passed"]  # onnx passed, but a bundle is all or nothing
    assert result.report_file == tmp_path / "bundle.failed-export_report.json"
    assert snapshot(out) == before and hidden(tmp_path) == []


def test_a_full_disk_while_converting_is_the_error_line(good: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    out = full_bundle(good, tmp_path)
    before = snapshot(out)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "model.onnx")

    monkeypatch.setitem(CONVERTERS, "onnx", full)
    assert export_cli.main([checkpoint(tmp_path), "--to", "onnx", "--out", str(out), "--jobs", "1", "-q"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"{PROG}: error: could not write the bundle (No space left on device, while writing onnx)")
    assert "parity" not in line and "untouched" in line
    assert snapshot(out) == before and hidden(tmp_path) == []


def test_a_full_disk_during_the_swap_puts_the_users_folders_back(
    good: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = full_bundle(good, tmp_path)  # notes/ is moved into the staging folder before the swap
    before = snapshot(out)

    def full(staging, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(publish, "_swap", full)
    assert export_cli.main([checkpoint(tmp_path), "--to", "onnx", "--out", str(out), "-q"]) == 1
    assert "could not write the bundle (No space left on device)" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before and hidden(tmp_path) == []


def test_an_exception_in_a_file_by_file_replacement_puts_the_previous_files_back(
    good: Path, tmp_path: Path, monkeypatch
) -> None:
    out = full_bundle(good, tmp_path)  # as with --out . (a shell sitting in the bundle folder)
    before = snapshot(out)
    staging = publish.new_staging(out)
    (staging / "model.json").write_text("{}")
    (staging / "model.onnx").write_bytes(b"new")
    real_replace = os.replace

    def full_at_the_model(src, dst):  # the disk fills up as the new model.onnx goes in
        if Path(src) == staging / "model.onnx":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_at_the_model)
    with pytest.raises(OSError, match="No space left on device"):
        publish._replace_file_by_file(staging, out, publish.bundle_file_names())
    monkeypatch.undo()
    assert snapshot(out) == before
    shutil.rmtree(staging)
    assert hidden(tmp_path) == []


# --- 2. one export at a time per --out ---------------------------------------------------------------
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_a_held_lock_refuses_a_second_export_at_once(good: Path, tmp_path: Path, capsys) -> None:
    out = full_bundle(good, tmp_path)
    live = tmp_path / ".bundle.staging-live"  # the first export's staging folder, mid-conversion
    live.mkdir()
    (live / "model.onnx").write_bytes(b"half")
    before = snapshot(out)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path(out))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert export_cli.main([checkpoint(tmp_path), "--to", "onnx", "--out", str(out), "-q"]) == 1
    finally:
        holder.kill()
        holder.wait()
    line = one_error_line(capsys.readouterr().err)
    assert f"another export (pid {holder.pid}) is writing {out}" in line
    assert snapshot(out) == before and (live / "model.onnx").read_bytes() == b"half"
    shutil.rmtree(live)


def test_a_stale_lock_of_a_dead_process_is_taken_over(good: Path, tmp_path: Path) -> None:
    out = full_bundle(good, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(out).write_text(f"{int(dead.stdout)}\n")  # left by an export that was killed
    (tmp_path / ".bundle.staging-killed").mkdir()  # and its staging folder
    assert export_cli.main([checkpoint(tmp_path), "--to", "onnx", "--out", str(out), "-q"]) == 0
    assert json.loads((out / "model.json").read_text())["variant"] == "sp"
    assert hidden(tmp_path) == []  # the lock file and the staging folder are gone


# --- 3. --out given as a link ------------------------------------------------------------------------
def test_a_linked_out_gets_the_bundle_in_its_target(good: Path, tmp_path: Path) -> None:
    real = full_bundle(good, tmp_path)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    for variant in ("sp", "sp+ss"):  # into a bundle already there, and again
        assert export_cli.main([checkpoint(tmp_path, variant), "--to", "onnx", "--out", str(link), "-q"]) == 0
        assert link.is_symlink() and Path(os.readlink(link)) == real
        assert json.loads((real / "model.json").read_text())["variant"] == variant
    assert sorted(p.name for p in real.iterdir()) == [
        "export_report.json",
        "golden.json",
        "golden.png",
        "model.json",
        "model.onnx",
        "model.onnx.modules.json",
        "model.schema.json",
        "notes",
        "samples",
        "samples.json",
    ]
    assert hidden(tmp_path) == []


# --- 4. model.json records each model file's sha256 ----------------------------------------------
def test_model_json_records_the_sha256_of_each_model_file(good: Path) -> None:
    meta = json.loads((good / "model.json").read_text())
    assert meta["sha256"] == {"model.onnx": model_sha256(good / "model.onnx")}
    assert meta["formats"]["onnx"] == {  # the format entries keep their shape: the apps check it strictly
        "file": "model.onnx",
        "layout": "NCHW",
        "input_name": "input",
        "output_name": "logits",
        "precision": "fp32",
        "extra": {"outputs": "logits"},
        "input_dtype": "float32",
    }


def test_the_hash_of_a_model_folder_covers_its_files_and_their_names(tmp_path: Path) -> None:
    package = tmp_path / "model.mlpackage"
    (package / "Data" / "weights").mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    (package / "Data" / "weights" / "weight.bin").write_bytes(b"\x01\x02")
    first = model_sha256(package)
    assert len(first) == 64 and model_sha256(package) == first
    (package / "Data" / "weights" / "weight.bin").write_bytes(b"\x01\x03")
    changed = model_sha256(package)
    os.replace(package / "Data" / "weights" / "weight.bin", package / "Data" / "weights" / "other.bin")
    assert len({first, changed, model_sha256(package)}) == 3


def tampered(good: Path, tmp_path: Path, how: str) -> Path:
    folder = tmp_path / "tampered"
    shutil.copytree(good, folder)
    if how == "bytes changed":
        raw = bytearray((folder / "model.onnx").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (folder / "model.onnx").write_bytes(bytes(raw))
    else:  # another model's file copied in
        other = tmp_path / "other"
        assert export_cli.main([checkpoint(tmp_path, "sp"), "--to", "onnx", "--out", str(other), "-q"]) == 0
        shutil.copy(other / "model.onnx", folder / "model.onnx")
    return folder


@pytest.mark.parametrize("how", ["bytes changed", "another bundle's model.onnx"])
def test_a_tampered_model_file_is_refused_at_load(good: Path, tmp_path: Path, how: str, capsys) -> None:
    folder = tampered(good, tmp_path, how)
    capsys.readouterr()
    with pytest.raises(BundleError, match=r"cannot load .*model.onnx: not the file this bundle.s model.json was"):
        open_runner(folder, "onnx")
    photo = good.parent / "photo.png"
    assert commands.main(["predict", str(folder), str(photo), "--to", "onnx"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("deepsquare predict: ")
    assert "model.onnx" in lines[0] and "re-export" in lines[0]


def test_an_old_model_json_without_hashes_still_loads(good: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "old"
    shutil.copytree(good, folder)
    meta = json.loads((folder / "model.json").read_text())  # as deepsquare-bundle/1 wrote it, before the hashes
    meta = {k: v for k, v in meta.items() if k not in ("sha256", "id", "input", "golden", "samples")}
    meta["schema"] = "deepsquare-bundle/1"
    meta["formats"] = {name: {k: v for k, v in e.items() if k != "input_dtype"} for name, e in meta["formats"].items()}
    (folder / "model.json").write_text(json.dumps(meta))
    assert load_bundle(folder)[1].sha256 == {}
    assert open_runner(folder, "onnx")[0].run is not None
    assert commands.main(["predict", str(folder), str(good.parent / "photo.png"), "--to", "onnx"]) == 0
    assert capsys.readouterr().out.strip()


def test_a_malformed_hash_record_is_refused(good: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(good, folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["sha256"] = {"model.onnx": "abc"}
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"sha256\.model\.onnx: 'abc' must be a sha256 hex digest"):
        load_bundle(folder)
