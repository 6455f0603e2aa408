"""apps/web: the page's preprocessing equals Python's, the server serves only what it should, and in a
headless Chromium both web runtimes give the Python runners' logits on real photographs.

The browser tests need Node.js, apps/web/node_modules (``bash apps/web/setup.sh``) and Debian's
chromium; ``.ci/setup`` installs them. Where one is missing they skip, except when
DEEPSQUARE_REQUIRE_APP_TOOLS=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from deepsquare.export import commands
from deepsquare.runtime import images, web, web_bench
from deepsquare.runtime.bundle import load_bundle
from deepsquare.runtime.preprocess import normalize_nchw
from deepsquare.runtime.runners import LiteRTRunner, OnnxRunner

APP = web.default_app_dir()
PHOTOS = sorted((FIXTURES / "photos").glob("*.jpg"))
BIN = Path(sys.executable).parent


def _need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("DEEPSQUARE_REQUIRE_APP_TOOLS") == "1":
            pytest.fail(f"{what} (DEEPSQUARE_REQUIRE_APP_TOOLS=1)")
        pytest.skip(what)


def need_node() -> None:
    _need(shutil.which("node") is not None, "Node.js is not installed")


def need_browser() -> str:
    need_node()
    _need(
        web_bench.find_playwright(APP) is not None, "apps/web packages missing: bash apps/web/setup.sh; bash .ci/setup"
    )
    browser = web_bench.find_browser(None)
    _need(browser is not None, "chromium is not installed")
    return browser


def run_node(script: str) -> None:
    subprocess.run(["node", "--input-type=module", "-e", script], check=True, cwd=APP)


# ---- preprocessing: the page's JavaScript against Pillow and numpy, no browser ------------------


@pytest.mark.parametrize("size", [224, 64, 37, 500])
def test_js_resize_equals_pillow_bilinear_on_photos(tmp_path, size):
    need_node()
    for photo in PHOTOS:
        rgb = images.load_rgb(photo)
        pixels = np.asarray(rgb)
        h, w, _ = pixels.shape
        pixels.tofile(tmp_path / "in.raw")
        run_node(f"""
            import {{ resizeBilinear }} from './src/preprocess.js';
            import fs from 'node:fs';
            const px = new Uint8Array(fs.readFileSync('{tmp_path}/in.raw'));
            fs.writeFileSync('{tmp_path}/out.raw', resizeBilinear(px, {w}, {h}, {size}, {size}, 3));
        """)
        got = np.fromfile(tmp_path / "out.raw", np.uint8).reshape(size, size, 3)
        want = np.asarray(images.load_image(photo, size) * 255.0).round().astype(np.uint8)
        np.testing.assert_array_equal(got, want, err_msg=f"{photo.name} at {size}")  # bit for bit


def test_js_tensor_equals_numpy_normalization(tmp_path):
    need_node()
    rgb = np.asarray(images.load_image(PHOTOS[0], 48) * 255.0).round().astype(np.uint8)
    rgb.tofile(tmp_path / "rgb.raw")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    run_node(f"""
        import {{ toTensor }} from './src/preprocess.js';
        import fs from 'node:fs';
        const rgb = new Uint8Array(fs.readFileSync('{tmp_path}/rgb.raw'));
        for (const layout of ['NCHW', 'NHWC']) {{
          const t = toTensor(rgb, 48, {mean}, {std}, layout);
          fs.writeFileSync(`{tmp_path}/${{layout}}.raw`, Buffer.from(t.buffer));
        }}
    """)

    class Meta:  # what normalize_nchw reads
        pass

    meta = Meta()
    meta.mean, meta.std = mean, std
    want = normalize_nchw((rgb.astype(np.float32) / 255.0)[None], meta)
    nchw = np.fromfile(tmp_path / "NCHW.raw", np.float32).reshape(1, 3, 48, 48)
    nhwc = np.fromfile(tmp_path / "NHWC.raw", np.float32).reshape(1, 48, 48, 3)
    np.testing.assert_array_equal(nchw, want)
    np.testing.assert_array_equal(nhwc, want.transpose(0, 2, 3, 1))


# ---- the server --------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    """The real server on a free port, over a bundle folder with a stand-in model file."""
    if not (APP / "node_modules" / "onnxruntime-web").is_dir():
        need_browser()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    (bundle / "model.onnx").write_bytes(b"onnx bytes")
    (tmp_path / "secret.txt").write_text("not for the page")
    server = web.start_server(web.Site(APP, [bundle]), "127.0.0.1", 0)
    yield web.server_url(server)
    server.shutdown()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), b""


def test_server_sends_isolation_headers_and_wasm_type(served):
    status, headers, body = fetch(served)
    assert status == 200 and b"importmap" in body
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    wasm = next((APP / "node_modules/onnxruntime-web/dist").glob("*.wasm")).name
    status, headers, body = fetch(f"{served}node_modules/onnxruntime-web/dist/{wasm}")
    assert status == 200 and headers["Content-Type"] == "application/wasm" and body[:4] == b"\0asm"
    status, headers, _ = fetch(f"{served}src/app.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript"
    assert json.loads(fetch(f"{served}bundles.json")[2]) == {"bundles": [{"name": "bundle", "url": "bundle/0/"}]}
    assert fetch(f"{served}bundle/0/model.onnx")[2] == b"onnx bytes"


@pytest.mark.parametrize(
    "path",
    [
        "bundle/0/../secret.txt",
        "bundle/0/%2e%2e/secret.txt",
        "bundle/1/model.json",
        "bundle/x/model.json",
        "node_modules/playwright-core/package.json",
        "node_modules/onnxruntime-web/package.json",
        "src/../../../etc/passwd",
        "src/%2e%2e/tools/drive.mjs",
        "tools/drive.mjs",
        "package.json",
    ],
)
def test_server_refuses_what_is_not_the_page_or_the_bundle(served, path):
    assert fetch(served + path)[0] == 404


def test_cli_refuses_bad_input_quickly(tmp_path, capsys):
    not_bundle = tmp_path / "empty"
    not_bundle.mkdir()
    assert commands.main(["serve", str(not_bundle), "--headless-bench", "--out", str(tmp_path / "o")]) == 1
    assert "is not a deepsquare bundle: model.json is missing" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written
    assert commands.main(["serve", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert commands.main(["serve", str(not_bundle), "--app-dir", str(tmp_path)]) == 1
    assert "the web app is not at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        commands.main(["serve", str(not_bundle), "--runs", "1"])
    assert "--runs must be >= 2" in capsys.readouterr().err


def test_cli_serves_until_interrupted_and_warns_about_a_bad_bundle(tmp_path):
    if not (APP / "node_modules" / "onnxruntime-web").is_dir():
        need_browser()
    command = [str(BIN / "deepsquare"), "serve", str(tmp_path), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            first = proc.stdout.readline()
            url = first.split(" at ")[-1].strip()
            assert first.startswith(f"serving {tmp_path} at http://127.0.0.1:"), first
            assert fetch(url)[0] == 200 and fetch(url + "bundle/0/model.json")[0] == 404  # the page shows why
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out
    assert "warning:" in err and "is not a deepsquare bundle" in err


def test_cli_names_a_busy_port(tmp_path):
    if not (APP / "node_modules" / "onnxruntime-web").is_dir():
        need_browser()
    server = web.start_server(web.Site(APP, [tmp_path]), "127.0.0.1", 0)
    try:
        port = server.server_address[1]
        with pytest.raises(web.WebAppError, match=f"cannot listen on 127.0.0.1:{port}.*--port 0"):
            web.start_server(web.Site(APP, [tmp_path]), "127.0.0.1", port)
    finally:
        server.shutdown()


def test_ratio_table_pairs_rounds_with_gap_and_the_other_runtime():
    def record(variant, runtime, rounds):
        return {
            "model": "m",
            "variant": variant,
            "runtime": runtime,
            "threads": 1,
            "p50_ms": float(np.median(rounds)),
            "extra": {"round_ms": rounds, "bundle": variant, "backend": "wasm-simd"},
        }

    records = [
        record("gap", "onnxruntime-web", [1.0, 2.0, 4.0]),
        record("gap", "litert.js", [2.0, 4.0, 8.0]),
        record("se", "onnxruntime-web", [1.5, 3.0, 6.0]),
        record("se", "litert.js", [2.0, 4.0, 8.0]),
    ]
    table = web_bench.ratio_table(records)
    assert (
        "| m | se | onnxruntime-web | wasm-simd | 1 | 3.00 | 1.500 (1.500-1.500) | 0.750 (0.750-0.750) x litert.js |"
        in table
    )
    assert "| m | gap | litert.js | wasm-simd | 1 | 4.00 | - | 2.000 (2.000-2.000) x onnxruntime-web |" in table


# ---- the page in headless Chromium, on a real trained bundle -------------------------------------


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory) -> Path:
    """ShuffleNetV2 x0.5 sp+ss+sex trained briefly on the built-in data, exported to ONNX and TFLite."""
    need_browser()
    root = tmp_path_factory.mktemp("web")
    train = [
        str(BIN / "deepsquare"),
        "train",
        "--arch",
        "shufflenetv2_x0_5",
        "--variant",
        "sp+ss+sex",
        "--data",
        "synthetic:300",
        "--epochs",
        "1",
        "--input-size",
        "64",
        "--out",
        str(root / "run"),
    ]
    subprocess.run(train, check=True, capture_output=True)
    export = [
        str(BIN / "deepsquare"),
        "export",
        str(root / "run" / "model.ckpt"),
        "--to",
        "onnx,tflite",
        "--out",
        str(root / "bundle"),
    ]
    subprocess.run(export, check=True, capture_output=True)
    return root / "bundle"


def drive(folders: list[Path], tmp_path: Path, **kwargs) -> dict:
    server = web.start_server(web.Site(APP, folders), "127.0.0.1", 0)
    try:
        return web_bench.drive_page(
            web.server_url(server), tmp_path / "state.json", APP, need_browser(), timeout_s=240, **kwargs
        )
    finally:
        server.shutdown()


def test_page_logits_equal_python_runners_on_real_photos(trained_bundle, tmp_path):
    state = drive([trained_bundle], tmp_path, upload=PHOTOS, screenshot=tmp_path / "page.png")
    assert state["error"] is None, state["error"]
    assert state["crossOriginIsolated"] is True
    assert state["bundle"]["runtimes"] == ["onnxruntime-web", "litert.js"]
    _, meta = load_bundle(trained_bundle)
    onnx = OnnxRunner(trained_bundle / "model.onnx", 1)
    litert = LiteRTRunner(trained_bundle / "model.tflite", 1)
    assert sorted(r["name"] for r in state["results"]) == sorted(p.name for p in PHOTOS)
    for result in state["results"]:
        photo = FIXTURES / "photos" / result["name"]
        x = normalize_nchw(images.load_image(photo, meta.input_size)[None], meta)  # Python's own preprocessing
        page_x = np.asarray(result["tensor_nchw"], np.float32).reshape(x.shape)
        np.testing.assert_array_equal(page_x, x)  # the page decodes and resizes the JPEG exactly as Pillow does
        for name, python_logits in (("onnxruntime-web", onnx.run(x)), ("litert.js", litert.run(x))):
            web_logits = np.asarray(result["logits"][name], np.float32)
            scale = np.abs(python_logits).max()
            assert np.abs(web_logits - python_logits[0]).max() <= 1e-4 * scale, (result["name"], name)
            assert result["top"][name][0]["index"] == int(python_logits[0].argmax())
            assert [t["index"] for t in result["top"][name]] == list(np.argsort(-python_logits[0], kind="stable")[:5])
    png = (tmp_path / "page.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert all("top-1 agrees between the runtimes" in text for text in state["resultText"])


def test_page_says_what_is_wrong_with_a_bundle(trained_bundle, tmp_path):
    empty = tmp_path / "not-a-bundle"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.json").write_text('{"schema": "deepsquare-bundle/1", "arch": ')
    lost = tmp_path / "lost-model"
    shutil.copytree(trained_bundle, lost)
    (lost / "model.onnx").unlink()
    cases = [
        (empty, "not-a-bundle is not a deepsquare bundle: model.json is missing (run deepsquare-export first)"),
        (corrupt, "corrupt/model.json is not valid JSON"),
        (lost, "model.onnx is listed in model.json but missing from the bundle folder"),
    ]
    for folder, message in cases:
        state = drive([folder], tmp_path)
        assert state["error"] and message in state["error"], (folder.name, state["error"])
    # the model that is there still runs
    assert state["bundle"]["runtimes"] == ["litert.js"]


def test_page_says_which_image_it_cannot_decode(trained_bundle, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a JPEG")
    state = drive([trained_bundle], tmp_path, upload=[bad, PHOTOS[0]])
    assert state["error"] == "cannot read notes.jpg: not an image this browser can decode"
    assert [r["name"] for r in state["results"]] == [PHOTOS[0].name]  # the good photo is still classified


def test_headless_bench_records_join_the_bench_report(trained_bundle, tmp_path):
    gap = tmp_path / "gap"  # a second bundle, labelled gap, so the ratio-to-gap column is exercised
    shutil.copytree(trained_bundle, gap)
    meta = json.loads((gap / "model.json").read_text())
    meta["variant"] = "gap"
    (gap / "model.json").write_text(json.dumps(meta))
    out = tmp_path / "web"
    command = [
        str(BIN / "deepsquare"),
        "serve",
        str(gap),
        str(trained_bundle),
        "--headless-bench",
        "--runs",
        "6",
        "--warmup",
        "1",
        "--threads",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = json.loads((out / "browser-records.json").read_text())
    assert sorted((r["variant"], r["runtime"]) for r in records) == [
        ("gap", "litert.js"),
        ("gap", "onnxruntime-web"),
        ("sp+sex+ss", "litert.js"),
        ("sp+sex+ss", "onnxruntime-web"),
    ]
    assert all(r["runs"] == 6 and len(r["extra"]["round_ms"]) == 6 and r["min_ms"] > 0 for r in records)
    threads = min(2, os.cpu_count() or 1)  # ONNX Runtime Web's pool; LiteRT.js runs its single-threaded build
    assert {(r["runtime"], r["threads"]) for r in records} == {("onnxruntime-web", threads), ("litert.js", 1)}
    assert "| shufflenetv2_x0_5 | sp+sex+ss | onnxruntime-web |" in done.stdout and (out / "page.png").is_file()
    bench = [
        str(BIN / "deepsquare"),
        "bench",
        str(trained_bundle),
        "--runs",
        "2",
        "--warmup",
        "0",
        "--to",
        "onnx",
        "--add-records",
        str(out / "browser-records.json"),
        "--out",
        str(tmp_path / "bench"),
        "--quiet",
    ]
    done = subprocess.run(bench, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "bench" / "bench.md").read_text()
    assert report.count("| onnxruntime-web |") == 2 and report.count("| litert.js |") == 2
    assert "backend=wasm-simd" in report
