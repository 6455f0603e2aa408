"""Hostile input, second sweep (issue 26): a crowd of clients and a rude one for the web server, a wildcard
--host, an ablation refused before it writes anything, an absurd synthetic:N, and a disk that fills up under
every write a training run makes."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from deepsquare.runtime import files, web
from deepsquare.train import cli as train_cli


def one_error_line(err: str, prog: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), lines
    assert "Traceback" not in err
    return lines[0]


# --- the web server -------------------------------------------------------------------------------
@pytest.fixture
def site(tmp_path: Path) -> web.Site:
    """The page (a stand-in index.html) and one bundle folder with a big stand-in model."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("<!doctype html><title>deepsquare</title>\n")
    for vendored in web.VENDORED:  # stand-ins: the command checks that the page's runtimes are there
        (app / "node_modules" / vendored).parent.mkdir(parents=True, exist_ok=True)
        (app / "node_modules" / vendored).write_text("")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    (bundle / "model.onnx").write_bytes(os.urandom(1 << 20) * 16)  # 16 MiB: a client can leave mid-answer
    return web.Site(app, [bundle])


def test_two_hundred_concurrent_requests_are_all_answered(site: web.Site) -> None:
    server = web.start_server(site, "127.0.0.1", 0)
    url, statuses, start = web.server_url(server), [], threading.Barrier(200)

    def get() -> None:
        start.wait()
        with urllib.request.urlopen(url, timeout=30) as response:
            statuses.append((response.status, response.read()))

    try:
        began = time.perf_counter()
        threads = [threading.Thread(target=get) for _ in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        took = time.perf_counter() - began
    finally:
        server.shutdown()
    assert len(statuses) == 200 and all(status == 200 and b"deepsquare" in body for status, body in statuses)
    assert took < 30, took
    assert threading.active_count() < 100  # the workers are bounded (web.Server.workers), not one per request


def test_a_client_that_leaves_mid_answer_is_silent(site: web.Site, capfd) -> None:
    server = web.start_server(site, "127.0.0.1", 0)
    try:
        port = server.server_address[1]
        for request in (b"GET /bundle/0/model.onnx HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\n", b""):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(request)
                if request.endswith(b"\r\n\r\n"):
                    assert client.recv(64).startswith(b"HTTP/1.0 200")  # then gone, 16 MiB unread
        time.sleep(1)  # the server's write fails now
        with urllib.request.urlopen(web.server_url(server), timeout=10) as response:
            assert response.status == 200  # and it still answers
    finally:
        server.shutdown()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_wildcard_host_is_refused_unless_written_out_and_then_warned_about(site: web.Site) -> None:
    bundle = str(site.bundles[0])
    command = [sys.executable, "-m", "deepsquare.export.commands", "serve", bundle, "--port", "0"]
    for host in ("0", "::0"):
        refused = subprocess.run([*command, "--host", host], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "means every address of this machine" in refused.stderr
    with subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--app-dir", str(site.app_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            serving, listening = proc.stdout.readline(), proc.stdout.readline()
            warning = next(line for line in iter(proc.stderr.readline, "") if "to the network" in line)
        finally:
            proc.terminate()
            proc.communicate(timeout=20)
    assert serving.startswith("serving ") and listening.startswith("listening on every address")
    assert "http://127.0.0.1:" in listening
    assert warning.startswith("deepsquare serve: warning: --host 0.0.0.0 serves the bundles to the network")


# --- ablate: refused before anything is written ------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "dropout=2,0.2"], "--dropout must be in [0, 1), got 2.0 (with --vary dropout=2)"),
        (["--vary", "lr=0.1,1e-1"], "gives one value twice"),
        (["--data", "synthetic:100000000000"], "needs an image count N >= 10 and <= 174,762"),
        (["--data", "mnist"], "unknown --data 'mnist'"),
        (["--data", "cifar10:/nonexistent"], "cifar10 folder /nonexistent does not exist"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--arch", "vanilla_cnn", "--variant", "gap,sex"], "variant 'sex' needs building blocks"),
        (["--arch", "vanilla_cnn", "--dsop", "stage9"], "DSoP stage(s) stage9 do not exist in vanilla_cnn"),
        (["--dsop-iterations", "x"], "--dsop-iterations takes whole numbers"),
        (["--variant", "gap,gap"], "--variant names 'gap' twice"),
        (["--seeds", "100000000"], "--seeds must be >= 2 (an interval needs two) and <= 1000"),
    ],
)
def test_ablate_refuses_before_any_folder_is_made(tmp_path: Path, args: list[str], message: str, capsys) -> None:
    from deepsquare.export import commands

    out = tmp_path / "sweep"
    started = time.perf_counter()
    code = commands.main(["ablate", "--out", str(out), "--seeds", "2", *args])
    assert code == 1 and not out.exists()
    assert message in one_error_line(capsys.readouterr().err, "deepsquare ablate")
    assert time.perf_counter() - started < 30


def test_ablate_messages(tmp_path: Path, capsys) -> None:
    from deepsquare.export import commands

    assert commands.main(["ablate", "--out", str(tmp_path / "o"), "--vary", "dropout=2,0.2"]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare ablate")
    assert "--dropout must be in [0, 1), got 2.0 (with --vary dropout=2)" in line


def test_ablate_names_a_damaged_sweep_json(tmp_path: Path, capsys) -> None:
    from deepsquare.export import commands

    (tmp_path / "sweep.json").write_text("{not json")
    assert commands.main(["ablate", "--out", str(tmp_path), "--data", "synthetic:64"]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare ablate")
    assert "sweep.json is not a readable sweep recipe" in line
    assert (tmp_path / "sweep.json").read_text() == "{not json"


# --- synthetic:N ------------------------------------------------------------------------------------
def test_synthetic_n_is_bounded_before_any_allocation(tmp_path: Path, capsys) -> None:
    from deepsquare.train.data import DataError, load_data

    started = time.perf_counter()
    with pytest.raises(DataError, match=r"<= 174,762 at --input-size 32 \(the bounds: 1,000,000 images"):
        load_data("synthetic:100000000000", 32)
    with pytest.raises(DataError, match="<= 10 at --input-size 4096"):
        load_data("synthetic", 4096)  # plain synthetic is 2,000 images: 400 GB at this size
    assert train_cli.main(["--data", "synthetic:100000000000", "--out", str(tmp_path / "t")]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert "got 'synthetic:100000000000'" in line and not (tmp_path / "t").exists()
    assert time.perf_counter() - started < 20


# --- a full disk under each write of a training run -------------------------------------------------
TRAIN = ["--arch", "vanilla_cnn", "--data", "synthetic:64", "--input-size", "16", "--batch-size", "32", "--quiet"]


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one-epoch")
    assert train_cli.main([*TRAIN, "--diagnostics", "--epochs", "1", "--out", str(out)]) == 0
    return out


def fill_disk_at(monkeypatch, name: str, nth: int) -> None:
    """The ``nth`` atomic write of ``name`` goes to /dev/full: every write fails with ENOSPC as on a full disk
    (torch.save then raises its own RuntimeError over the OSError, as it does there)."""
    real, seen = files.tempfile.mkstemp, []

    def mkstemp(dir, prefix, suffix):
        if prefix == f".{name}.":
            seen.append(name)
            if len(seen) == nth:
                return os.open("/dev/full", os.O_WRONLY), str(Path(dir) / f"{prefix}full{suffix}")
        return real(dir=dir, prefix=prefix, suffix=suffix)

    monkeypatch.setattr(files, "tempfile", SimpleNamespace(mkstemp=mkstemp))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    ("name", "nth", "what", "epoch"),
    [
        ("last.ckpt", 1, "the checkpoint of epoch 2", 1),  # torch.save's RuntimeError over ENOSPC
        ("metrics.csv", 1, "the checkpoint of epoch 2", 2),  # last.ckpt of epoch 2 was written whole
        ("diagnostics.csv", 1, "the checkpoint of epoch 2", 2),
        ("last.ckpt", 2, "the test figures", 2),
        ("metrics.csv", 2, "the test figures", 2),
        ("model.ckpt", 1, "model.ckpt", 2),  # the final copy
    ],
)
def test_a_full_disk_on_resume_is_one_line_naming_the_last_good_checkpoint(
    one_epoch: Path, tmp_path: Path, monkeypatch, capsys, name: str, nth: int, what: str, epoch: int
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    for file in one_epoch.iterdir():
        (out / file.name).write_bytes(file.read_bytes())
    capsys.readouterr()
    fill_disk_at(monkeypatch, name, nth)
    assert train_cli.main([*TRAIN, "--diagnostics", "--epochs", "2", "--resume", "--out", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert f"could not write {what} to {out}: No space left on device" in line
    assert f"the last good checkpoint {out / 'last.ckpt'} (epoch {epoch}) is intact" in line
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_on_a_new_run_and_an_unwritable_out(tmp_path: Path, monkeypatch, capsys) -> None:
    fill_disk_at(monkeypatch, "last.ckpt", 1)
    assert train_cli.main([*TRAIN, "--epochs", "1", "--out", str(tmp_path / "new")]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert "No space left on device; no checkpoint was kept" in line
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name == ".write-test":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    assert train_cli.main([*TRAIN, "--epochs", "1", "--out", str(tmp_path / "full")]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert f"cannot write to --out {tmp_path / 'full'}: No space left on device" in line


def test_torch_saves_runtime_error_on_a_full_disk_is_one_line(one_epoch: Path, tmp_path: Path, monkeypatch, capsys):
    """On a real full disk torch.save raises RuntimeError ("unexpected pos") over the OSError while closing its
    archive (seen on a 2 MB tmpfs); the trainer reports the OSError."""
    import torch

    def full(obj, f):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 2737984 vs 2737880"
            ) from None

    out = tmp_path / "run"
    out.mkdir()
    for file in one_epoch.iterdir():
        (out / file.name).write_bytes(file.read_bytes())
    before = (out / "last.ckpt").read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(torch, "save", full)
    assert train_cli.main([*TRAIN, "--epochs", "2", "--resume", "--out", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err, "deepsquare train")
    assert "could not write the checkpoint of epoch 2" in line and "No space left on device" in line
    assert f"{out / 'last.ckpt'} (epoch 1) is intact" in line and (out / "last.ckpt").read_bytes() == before


@pytest.mark.parametrize("timeout", ["nan", "inf"])
def test_serve_names_a_timeout_that_is_not_a_finite_number(tmp_path: Path, timeout: str, capsys) -> None:
    from deepsquare.export import commands

    with pytest.raises(SystemExit):
        commands.main(["serve", str(tmp_path), "--timeout", timeout])
    assert f"--timeout a finite number > 0, got 1 and {timeout}" in capsys.readouterr().err
