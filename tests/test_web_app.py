"""apps/web: the page checks a bundle against the shipped schema, runs the golden self-check in both web
runtimes, shows the bundle's samples, and classifies as the Python runners do; the server serves only what it should.

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
from deepsquare.runtime import images, schema, web, web_bench
from deepsquare.runtime.bundle import BundleMeta, FormatEntry, load_bundle
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


def need_node_modules() -> None:
    need_node()
    _need((APP / "node_modules" / web.VENDORED[-1]).is_file(), "apps/web packages missing: bash apps/web/setup.sh")


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


def png_pixels(path: Path) -> np.ndarray:
    return np.asarray(images.load_rgb(path))


# ---- the page's modules under Node, no browser ---------------------------------------------------


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


def valid_sidecar() -> dict:
    entry = FormatEntry("model.onnx", "NHWC", "input", "logits", input_dtype="uint8", extra={"outputs": "logits"})
    meta = BundleMeta("shufflenetv2_x0_5", "gap", ["cat", "dog"], 64, [0.5] * 3, [0.25] * 3, input="uint8")
    meta.formats = {"onnx": entry}
    meta.sha256 = {"model.onnx": "ab" * 32}
    return json.loads(meta.to_json())


def broken(path: str, value) -> dict:
    """The valid sidecar with the field at ``path`` (dotted) set to ``value``, or removed when value is ...."""
    data = valid_sidecar()
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


# (what is wrong, the page's message): each must also be refused by Python's jsonschema, from the same file
WRONG_FIELDS = [
    (broken("input_size", "64"), 'input_size must be a whole number, found "64"'),
    (broken("classes", []), "classes must have at least 1 item(s), found 0"),
    (broken("classes", ["cat", "cat"]), "classes lists the same value twice"),
    (broken("std", [0.2, 0, 0.2]), "std[1] must be > 0, found 0"),
    (broken("mean", ...), 'the field "mean" is missing'),
    (broken("colour", "red"), '"colour" is not a field this bundle version has'),
    (
        broken("schema", "deepsquare-bundle/3"),
        'is a "deepsquare-bundle/3" bundle; this page reads deepsquare-bundle/2 and',
    ),
    (broken("id", "not-a-uuid"), 'id has the wrong form, found "not-a-uuid"'),
    (broken("formats.onnx.layout", "NCHW"), 'formats.onnx.layout must be "NHWC", found "NCHW"'),  # uint8 is NHWC
    (broken("formats.onnx.output_name", ""), "formats.onnx.output_name must not be empty"),
    (
        broken("formats.onnx.file", "../model.onnx"),
        'formats.onnx.file has the wrong form, found "../model.onnx"; expected',
    ),
    (broken("formats.onnx.input_dtype", "int8"), "formats.onnx.input_dtype must be one of"),
    (broken("golden", "other.json"), 'golden must be one of "golden.json", null, found "other.json"'),
]


def test_js_refuses_each_wrong_field_with_its_own_message(tmp_path):
    """JSON.parse + Ajv against the shipped schema (+ the checks it cannot express), as the page runs them."""
    need_node_modules()
    assert schema.errors(valid_sidecar()) == []
    for document, _ in WRONG_FIELDS:
        assert schema.errors(document), document  # the page and Python read one schema: both refuse
    beyond = [  # what the schema cannot say
        (broken("sha256", {"other.onnx": "cd" * 32}), "sha256 lists other.onnx, which no format uses"),
    ]
    cases = [document for document, _ in WRONG_FIELDS + beyond]
    (tmp_path / "cases.json").write_text(json.dumps([valid_sidecar(), *cases]))
    run_node(f"""
        import Ajv from './node_modules/ajv-dist/dist/ajv7.min.js';
        import {{ makeValidators, checkMeta }} from './src/bundle.js';
        import fs from 'node:fs';
        const schema = JSON.parse(fs.readFileSync('{schema.SCHEMA_FILE}', 'utf8'));
        const v = makeValidators(Ajv, schema, 'bundle.schema.json');
        const said = JSON.parse(fs.readFileSync('{tmp_path}/cases.json', 'utf8')).map((doc) => {{
          try {{ checkMeta(v.meta(JSON.parse(JSON.stringify(doc)), 'b/model.json'), 'b/model.json'); return null; }}
          catch (exc) {{ return exc.message; }}
        }});
        fs.writeFileSync('{tmp_path}/said.json', JSON.stringify(said));
    """)
    said = json.loads((tmp_path / "said.json").read_text())
    assert said[0] is None  # the valid sidecar passes
    wrong = [
        (want, message)
        for message, (_, want) in zip(said[1:], WRONG_FIELDS + beyond, strict=True)
        if not (message and message.startswith("b/model.json") and want in message)
    ]
    assert not wrong, wrong
    assert "does not follow the bundle schema (urn:deepsquare:schema:deepsquare-bundle/2)" in said[1]


def test_js_reads_a_version_1_sidecar_as_float_input_without_golden(tmp_path):
    need_node_modules()
    old = {  # what deepsquare-bundle/1 exports wrote: no id, input, input_dtype, golden or samples
        "schema": "deepsquare-bundle/1",
        "arch": "resnet18",
        "variant": "gap",
        "classes": ["a", "b"],
        "input_size": 32,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.2, 0.2, 0.2],
        "formats": {
            "onnx": {"file": "model.onnx", "layout": "NCHW", "input_name": "input", "output_name": "logits"},
            "coreml": {"file": "model.mlpackage", "layout": "image", "input_name": "image", "output_name": "p"},
        },
    }
    assert schema.errors(old) == []
    (tmp_path / "old.json").write_text(json.dumps(old))
    run_node(f"""
        import Ajv from './node_modules/ajv-dist/dist/ajv7.min.js';
        import {{ makeValidators, checkMeta }} from './src/bundle.js';
        import fs from 'node:fs';
        const v = makeValidators(Ajv, JSON.parse(fs.readFileSync('{schema.SCHEMA_FILE}', 'utf8')), 'schema');
        const meta = checkMeta(v.meta(JSON.parse(fs.readFileSync('{tmp_path}/old.json', 'utf8')), 'm'), 'm');
        fs.writeFileSync('{tmp_path}/read.json', JSON.stringify(meta));
    """)
    read = json.loads((tmp_path / "read.json").read_text())
    assert (read["input"], read["golden"], read["samples"]) == ("float", None, None)
    assert read["formats"]["onnx"]["input_dtype"] == "float32" and read["formats"]["coreml"]["input_dtype"] == "image"
    assert read["formats"]["onnx"]["precision"] == "fp32"


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
    (bundle / "samples").mkdir()
    (bundle / "samples" / "0.png").write_bytes(b"png bytes")
    (bundle / "other").mkdir()
    (bundle / "other" / "x.txt").write_text("not a sample")
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
    assert fetch(f"{served}bundle/0/samples/0.png")[2] == b"png bytes"  # the first screen's images
    status, headers, body = fetch(f"{served}bundle.schema.json")  # the schema the page checks bundles against
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == schema.bundle_schema()


@pytest.mark.parametrize(
    "path",
    [
        "bundle/0/../secret.txt",
        "bundle/0/%2e%2e/secret.txt",
        "bundle/0/samples/../../secret.txt",
        "bundle/0/other/x.txt",
        "bundle/0/samples/",
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


# ---- the page in headless Chromium, on real exported bundles ------------------------------------


def train_and_export(root: Path, *export_args: str) -> Path:
    """ShuffleNetV2 x0.5 sp+ss+sex trained briefly on the digits (real handwriting), exported to ONNX and TFLite."""
    if not (root / "run" / "model.ckpt").is_file():
        train = ["train", "--arch", "shufflenetv2_x0_5", "--variant", "sp+ss+sex", "--data", "digits"]
        train += ["--epochs", "1", "--input-size", "32", "--out", root / "run"]
        subprocess.run([BIN / "deepsquare", *map(str, train)], check=True, capture_output=True)
    out = root / f"bundle{'-'.join(('', *export_args))}".replace("--", "")
    export = ["export", root / "run" / "model.ckpt", "--to", "onnx,tflite", *export_args, "--out", out]
    subprocess.run([BIN / "deepsquare", *map(str, export)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def web_root(tmp_path_factory) -> Path:
    need_browser()
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def trained_bundle(web_root) -> Path:
    """The bundle the apps and the demo use: uint8 input (the graphs normalize the pixels themselves)."""
    return train_and_export(web_root, "--input", "uint8")


def drive(folders: list[Path], tmp_path: Path, **kwargs) -> dict:
    server = web.start_server(web.Site(APP, folders), "127.0.0.1", 0)
    try:
        return web_bench.drive_page(
            web.server_url(server), tmp_path / "state.json", APP, need_browser(), timeout_s=240, **kwargs
        )
    finally:
        server.shutdown()


def python_logits(bundle: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """What the Python runners give for these uint8 RGB pixels (one image), by the page's runtime names."""
    _, meta = load_bundle(bundle)
    onnx = OnnxRunner(bundle / "model.onnx", 1, meta)
    litert = LiteRTRunner(bundle / "model.tflite", 1, meta)
    return {"onnxruntime-web": onnx.run_pixels(pixels[None])[0], "litert.js": litert.run_pixels(pixels[None])[0]}


def assert_same_logits(result: dict, want: dict[str, np.ndarray]) -> None:
    for name, python in want.items():
        web_logits = np.asarray(result["logits"][name], np.float32)
        assert np.abs(web_logits - python).max() <= 1e-4 * max(1.0, np.abs(python).max()), (result["name"], name)
        assert [t["index"] for t in result["top"][name]] == list(np.argsort(-python, kind="stable")[:5])


def check_self_check_and_samples(bundle: Path, tmp_path: Path) -> dict:
    """Open the page on ``bundle``, click every sample; the self-check passed in both runtimes before."""
    state = drive([bundle], tmp_path, click_samples="all", screenshot=tmp_path / "page.png")
    assert state["error"] is None, state["error"]
    assert state["bundle"]["runtimes"] == ["onnxruntime-web", "litert.js"]
    golden = json.loads((bundle / "golden.json").read_text())
    checks = state["bundle"]["selfCheck"]
    for name, fmt, title in (("onnxruntime-web", "onnx", "ONNX Runtime Web"), ("litert.js", "tflite", "LiteRT.js")):
        check = checks[name]
        assert check["passed"] is True and check["max_abs_diff"] <= golden["formats"][fmt]["tolerance"], check
        assert check["message"].startswith(f"{title}: self-check passed (max |diff| ")
        assert np.abs(np.asarray(check["values"]) - golden["formats"][fmt]["values"]).max() == pytest.approx(
            check["max_abs_diff"]
        )
    assert state["selfCheckText"] == [checks["onnxruntime-web"]["message"], checks["litert.js"]["message"]]
    # golden.png went into the models as its own pixels: the canvas at the same size changes none
    golden_png = png_pixels(bundle / golden["image"])
    np.testing.assert_array_equal(
        np.asarray(state["bundle"]["goldenRgb"], np.uint8).reshape(golden_png.shape), golden_png
    )
    # the first screen: the bundle's samples with their true labels; each click classifies as Python does
    samples = json.loads((bundle / "samples.json").read_text())
    assert state["sampleLabels"] == [s["label"] for s in samples] and len(samples) >= 4
    assert [(r["name"], r["truth"]) for r in state["results"]] == [(s["file"], s["label"]) for s in samples]
    for result in state["results"]:
        pixels = png_pixels(bundle / result["name"])
        np.testing.assert_array_equal(np.asarray(result["rgb"], np.uint8).reshape(pixels.shape), pixels)
        assert_same_logits(result, python_logits(bundle, pixels))
    assert all(
        f"true label {s['label']}" in text for s, text in zip(samples, reversed(state["resultText"]), strict=True)
    )
    return state


def test_page_self_check_passes_and_samples_classify_as_python_uint8(trained_bundle, tmp_path):
    _, meta = load_bundle(trained_bundle)
    assert meta.input == "uint8" and {e.input_dtype for e in meta.formats.values()} == {"uint8"}
    check_self_check_and_samples(trained_bundle, tmp_path)
    png = (tmp_path / "page.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@pytest.mark.slow
def test_page_self_check_passes_and_samples_classify_as_python_float(web_root, tmp_path):
    bundle = train_and_export(web_root)  # today's default: normalized float32 input, NCHW (ONNX) / NHWC (TFLite)
    _, meta = load_bundle(bundle)
    assert {e.input_dtype for e in meta.formats.values()} == {"float32"}
    check_self_check_and_samples(bundle, tmp_path)


def test_page_classifies_photos_as_python_on_its_own_pixels(trained_bundle, tmp_path):
    state = drive([trained_bundle], tmp_path, upload=PHOTOS)
    assert state["error"] is None, state["error"]
    assert state["crossOriginIsolated"] is True
    _, meta = load_bundle(trained_bundle)
    size = meta.input_size
    assert sorted(r["name"] for r in state["results"]) == sorted(p.name for p in PHOTOS)
    for result in state["results"]:
        page = np.asarray(result["rgb"], np.uint8).reshape(size, size, 3)
        pillow = np.asarray(images.load_image(FIXTURES / "photos" / result["name"], size) * 255.0).round()
        # The same rule (whole photo stretched to size x size, EXIF applied, colours as stored); the browser's
        # smoothing is not Pillow's BILINEAR arithmetic. Measured mean |diff| on these photos: 0.6-1.4 levels at
        # 224 px, 1.5-3.4 at 32 px (a 10x downscale); without smoothing ('low') it was 4.3-16.4 at 32 px.
        assert np.abs(page.astype(float) - pillow).mean() < 4.5, result["name"]
        assert_same_logits(result, python_logits(trained_bundle, page))  # the runtimes: equal on equal pixels
    assert all("top-1 agrees between the runtimes" in text for text in state["resultText"])


def test_page_self_check_fails_clearly_on_an_altered_golden_file(trained_bundle, tmp_path):
    altered = tmp_path / "altered"
    shutil.copytree(trained_bundle, altered)
    golden = json.loads((altered / "golden.json").read_text())
    for fmt in ("onnx", "tflite"):
        golden["formats"][fmt]["values"] = [
            v + (1.0 if i == 0 else 0.0) for i, v in enumerate(golden["formats"][fmt]["values"])
        ]
    (altered / "golden.json").write_text(json.dumps(golden))
    state = drive([altered], tmp_path, click_samples="all")
    for title, fmt in (("ONNX Runtime Web", "onnx"), ("LiteRT.js", "tflite")):
        said = f"{title}: self-check FAILED on golden.png: max |diff| 1.00e+0 against golden.json's {fmt} values"
        assert said in state["error"], state["error"]
        assert "not classifying with it" in state["error"]
    assert state["error"].startswith("no browser runtime can run this bundle")
    assert state["bundle"]["runtimes"] == [] and state["results"] == []  # nothing classified, no samples to click
    assert state["sampleLabels"] == []


def test_page_says_what_is_wrong_with_a_bundle(trained_bundle, tmp_path):
    empty = tmp_path / "not-a-bundle"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.json").write_text('{"schema": "deepsquare-bundle/2", "arch": ')
    wrong = tmp_path / "wrong-field"
    shutil.copytree(trained_bundle, wrong)
    meta = json.loads((wrong / "model.json").read_text())
    meta["input_size"] = str(meta["input_size"])
    (wrong / "model.json").write_text(json.dumps(meta))
    damaged = tmp_path / "damaged"
    shutil.copytree(trained_bundle, damaged)
    (damaged / "model.onnx").unlink()
    with open(damaged / "model.tflite", "r+b") as f:  # one byte changed: the sha256 in model.json no longer matches
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    mislabelled = tmp_path / "mislabelled"  # valid by the schema, but the graphs take uint8 pixels
    shutil.copytree(trained_bundle, mislabelled)
    meta_says = json.loads((mislabelled / "model.json").read_text())
    for entry in meta_says["formats"].values():
        entry["input_dtype"] = "float32"
    (mislabelled / "model.json").write_text(json.dumps(meta_says))
    cases = [
        (
            mislabelled,
            [
                f"{title} cannot use {file}: {file} takes uint8 input but model.json says float32"
                for title, file in (("ONNX Runtime Web", "model.onnx"), ("LiteRT.js", "model.tflite"))
            ],
        ),
        (empty, ["not-a-bundle is not a deepsquare bundle: it has no model.json (make one with deepsquare export)"]),
        (corrupt, ["corrupt/model.json is not valid JSON"]),
        (
            wrong,
            [
                "wrong-field/model.json does not follow the bundle schema (urn:deepsquare:schema:deepsquare-bundle/2): "
                f'input_size must be a whole number, found "{meta["input_size"]}"'
            ],
        ),
        (
            damaged,
            [
                "model.onnx is listed in model.json but missing from the bundle folder",
                "model.tflite is not the file exported with this model.json (its sha256 differs)",
            ],
        ),
    ]
    for folder, messages in cases:
        state = drive([folder], tmp_path)
        assert state["error"] and all(m in state["error"] for m in messages), (folder.name, state["error"])
        assert state["results"] == [] and state["sampleLabels"] == []


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
