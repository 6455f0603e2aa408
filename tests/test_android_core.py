"""apps/android: the app's pure-Kotlin core, compiled with kotlinc and run under JUnit 4 on the JVM (Gson from
Debian), reads a bundle ``deepsquare export`` really wrote and turns its golden image into the model input; LiteRT
(which the JVM cannot run) runs that input here in Python, and the core's self-check judges the outputs. The core's
benchmark records load with ``deepsquare bench --add-records``.

The Gradle/Android part cannot be built here (no Android SDK, no Google Maven, no Gradle plugin): what can be
checked without it is that the XML parses, the manifest asks for the camera, the layout ids the code uses exist, and
(slow) that the app's Kotlin compiles against stubs of the Android and LiteRT classes it uses (tools/typecheck_app.py).

The JVM tests need ``bash apps/android/setup.sh`` (kotlinc from npm; a JDK, JUnit 4 and Gson from Debian). Where a tool
is missing they skip, except when DEEPSQUARE_REQUIRE_APP_TOOLS=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from export_helpers import write_checkpoint

from deepsquare.runtime.bench_report import load_records
from deepsquare.runtime.records import percentile

REPO = Path(__file__).resolve().parents[1]
ANDROID = REPO / "apps" / "android"
CORE = ANDROID / "core"
APP = ANDROID / "app"
KOTLINC = ANDROID / ".toolchain" / "lib" / "node_modules" / "kotlin-compiler" / "bin" / "kotlinc"
BIN = Path(sys.executable).parent
RUN_TESTS = ["bash", str(CORE / "run-tests.sh")]


def _need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("DEEPSQUARE_REQUIRE_APP_TOOLS") == "1":
            pytest.fail(f"{what} (DEEPSQUARE_REQUIRE_APP_TOOLS=1)")
        pytest.skip(what)


def need_jvm_tools() -> None:
    _need(KOTLINC.is_file(), "kotlinc is not installed: bash apps/android/setup.sh")
    _need(shutil.which("java") is not None, "no JDK (java): bash apps/android/setup.sh")
    for jar, package in (("junit4.jar", "junit4"), ("gson.jar", "libgoogle-gson-java")):
        _need(Path("/usr/share/java", jar).is_file(), f"{package} is not installed: bash apps/android/setup.sh")


def _export_args() -> list[str]:
    """uint8 input where this deepsquare's export has --input (the apps' bundles); float otherwise."""
    help_text = subprocess.run([str(BIN / "deepsquare"), "export", "--help"], capture_output=True, text=True).stdout
    return ["--input", "uint8"] if "--input" in help_text else []


def _export(root: Path, args: list[str]) -> Path:
    ckpt = write_checkpoint(root, "vanilla_cnn", "sp+ss", size=32)
    out = root / "bundle"
    subprocess.run(
        [str(BIN / "deepsquare"), "export", str(ckpt), "--to", "tflite", *args, "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real bundle: a vanilla_cnn sp+ss checkpoint exported with deepsquare export --to tflite --input uint8."""
    need_jvm_tools()  # before exporting: a missing toolchain skips at once
    return _export(tmp_path_factory.mktemp("android"), _export_args())


@pytest.fixture(scope="module")
def junit_run(exported, tmp_path_factory) -> dict:
    """run-tests.sh once, with the real bundle: what the Kotlin tests printed, read and wrote."""
    out = tmp_path_factory.mktemp("android-out")
    proc = subprocess.run(
        [*RUN_TESTS, "--bundle", str(exported), "--record-out", str(out / "records.json"), "--report-out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {"proc": proc, "out": out}


def _ok(junit_run) -> Path:
    proc = junit_run["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return junit_run["out"]


def test_junit_tests_pass(junit_run):
    _ok(junit_run)
    stdout = junit_run["proc"].stdout
    count = int(stdout.split("OK (")[1].split(" test")[0])
    assert count >= 15, stdout
    # The self-check ran both ways on the JVM, and the real bundle was read (not skipped).
    assert "SelfCheckTest: self-check passed (max |diff| " in stdout
    assert "SelfCheckTest: altered golden.json -> self-check FAILED: " in stdout
    assert "RealBundleTest: " in stdout


def test_kotlin_reads_model_json_as_python_does(junit_run, exported):
    read = json.loads((_ok(junit_run) / "read.json").read_text())
    sidecar = json.loads((exported / "model.json").read_text())
    for field in ("schema", "classes", "input_size", "mean", "std"):
        assert read[field] == sidecar[field], field
    tflite = sidecar["formats"]["tflite"]
    assert read["tflite_input_dtype"] == tflite.get("input_dtype", "float32")
    assert read["tflite_outputs"] == tflite.get("extra", {}).get("outputs", "logits")
    assert read["input"] == sidecar.get("input", "float")
    assert read["id"] == sidecar.get("id")


def _litert_outputs(model: Path, input_bytes: bytes) -> np.ndarray:
    """The .tflite run by LiteRT (Python) on exactly the bytes the Kotlin core made."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    tensor = interpreter.get_input_details()[0]
    array = np.frombuffer(input_bytes, dtype=np.dtype(tensor["dtype"]).newbyteorder("<")).reshape(tensor["shape"])
    interpreter.set_tensor(tensor["index"], array.astype(tensor["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(-1)


def _self_check(bundle: Path, outputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*RUN_TESTS, "--self-check", str(bundle), str(outputs)], capture_output=True, text=True)


def _check_kotlin_input_with_litert(bundle: Path, kotlin_out: Path, tmp_path: Path) -> None:
    """LiteRT on the input the core made from golden.png returns golden.json's values; the core's self-check agrees."""
    meta = json.loads((bundle / "model.json").read_text())
    assert meta.get("golden") == "golden.json", "every export writes a golden self-check file"
    outputs = _litert_outputs(bundle / "model.tflite", (kotlin_out / "tflite_input.bin").read_bytes())
    golden = json.loads((bundle / "golden.json").read_text())["formats"]["tflite"]
    assert np.abs(outputs - np.array(golden["values"])).max() <= golden["tolerance"]
    (tmp_path / "outputs.json").write_text(json.dumps(outputs.astype(float).tolist()))
    passed = _self_check(bundle, tmp_path / "outputs.json")
    assert passed.returncode == 0 and passed.stdout.startswith("self-check passed (max |diff| "), passed.stdout


def test_self_check_on_litert_outputs_for_the_kotlin_input(junit_run, exported, tmp_path):
    _check_kotlin_input_with_litert(exported, _ok(junit_run), tmp_path)
    # The same outputs against an altered golden file: a clear failure, exit 1.
    altered = tmp_path / "altered"
    shutil.copytree(exported, altered)
    golden_json = json.loads((altered / "golden.json").read_text())
    golden_json["formats"]["tflite"]["values"][0] += 0.5
    (altered / "golden.json").write_text(json.dumps(golden_json))
    failed = _self_check(altered, tmp_path / "outputs.json")
    assert failed.returncode == 1 and failed.stdout.startswith("self-check FAILED: "), failed.stdout


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_size", "64", 'field input_size must be a whole number, but it is the text "64"'),
        ("std", [0.2, 0.0, 0.2], '"std" must be three positive numbers'),
        ("classes", [], '"classes" is empty'),
        ("schema", "deepsquare-bundle/9", 'schema "deepsquare-bundle/9" is not one this app reads'),
    ],
)
def test_kotlin_refuses_a_bundle_with_a_wrong_field(junit_run, exported, tmp_path, field, value, message):
    _ok(junit_run)  # compiled
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    meta = json.loads((broken / "model.json").read_text())
    meta[field] = value
    (broken / "model.json").write_text(json.dumps(meta))
    (tmp_path / "outputs.json").write_text("[]")
    done = _self_check(broken, tmp_path / "outputs.json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout, done.stdout


@pytest.mark.slow
def test_float_bundle_input_made_by_kotlin_matches_litert(tmp_path):
    """A float bundle (`--input float`): the core normalizes golden.png itself; LiteRT on that input agrees."""
    need_jvm_tools()
    bundle = _export(tmp_path / "float", ["--input", "float"] if _export_args() else [])
    assert (
        json.loads((bundle / "model.json").read_text())["formats"]["tflite"].get("input_dtype", "float32") == "float32"
    )
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [*RUN_TESTS, "--bundle", str(bundle), "--report-out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    _check_kotlin_input_with_litert(bundle, out, tmp_path)


def test_kotlin_records_load_as_benchmark_records(junit_run):
    records = load_records([_ok(junit_run) / "records.json"])
    assert [r["extra"]["accelerator"] for r in records] == ["cpu", "gpu"]
    for r in records:
        times = sorted(r["extra"]["test_times_ms"])
        assert r["runtime"] == "litert-android" and r["api"] == "CompiledModel"
        assert r["runs"] == len(times)
        assert r["p50_ms"] == percentile(times, 50)
        assert r["p90_ms"] == percentile(times, 90)
        assert (r["min_ms"], r["max_ms"]) == (times[0], times[-1])
        assert math.isclose(r["mean_ms"], statistics.fmean(times), rel_tol=1e-12)
        assert math.isclose(r["std_ms"], statistics.stdev(times), rel_tol=1e-12)
        assert r["extra"]["input_size"] == 8 and r["extra"]["input"] == "uint8"
    assert records[0]["threads"] == 4 and records[1]["threads"] is None


def test_app_resources_parse_and_hold_what_the_code_uses():
    manifest = APP / "src" / "main" / "AndroidManifest.xml"
    xml_files = [manifest, *sorted((APP / "src" / "main" / "res").rglob("*.xml"))]
    assert len(xml_files) >= 5
    for path in xml_files:
        ET.parse(path)  # well-formed, or ParseError names the line
    android = "{http://schemas.android.com/apk/res/android}"
    root = ET.parse(manifest).getroot()
    assert "android.permission.CAMERA" in [e.get(f"{android}name") for e in root.iter("uses-permission")]
    activities = {e.get(f"{android}name") for e in root.iter("activity")}
    assert {".MainActivity", ".LatencyActivity"} <= activities
    for activity in activities:
        assert (APP / "src/main/kotlin/ai/deepsquare/android" / f"{activity.lstrip('.')}.kt").is_file()
    settings = (ANDROID / "settings.gradle.kts").read_text()
    assert 'include(":core")' in settings and 'include(":app")' in settings
    # The core is used, not copied: none of its files is in the app (the type check compiles them together).
    core_files = {p.name for p in (CORE / "src" / "main").rglob("*.kt")}
    assert not core_files & {p.name for p in (APP / "src").rglob("*.kt")}


def test_install_bundle_script_checks_its_input(exported, tmp_path):
    # A copy of the project's files the script touches, so the real assets folder is left alone.
    copy = tmp_path / "android"
    (copy / "app" / "src" / "main" / "assets").mkdir(parents=True)
    shutil.copy(ANDROID / "install-bundle.sh", copy / "install-bundle.sh")
    script = ["bash", str(copy / "install-bundle.sh")]
    bad = subprocess.run([*script, str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert bad.returncode != 0 and "is not a folder" in bad.stderr
    good = subprocess.run([*script, str(exported)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assets = copy / "app" / "src" / "main" / "assets"
    meta = json.loads((exported / "model.json").read_text())
    for name in ["model.tflite", "model.json", *([meta["golden"], "golden.png"] if meta.get("golden") else [])]:
        assert (assets / name).read_bytes() == (exported / name).read_bytes(), name
    no_json = tmp_path / "no-json"
    no_json.mkdir()
    shutil.copy(exported / "model.tflite", no_json / "model.tflite")
    missing = subprocess.run([*script, str(no_json)], capture_output=True, text=True)
    assert missing.returncode != 0 and "model.json" in missing.stderr
    not_tflite = tmp_path / "not-tflite"
    shutil.copytree(exported, not_tflite)
    (not_tflite / "model.tflite").write_bytes(b"not a flatbuffer")
    wrong = subprocess.run([*script, str(not_tflite)], capture_output=True, text=True)
    assert wrong.returncode != 0 and "TFL3" in wrong.stderr


@pytest.mark.slow
def test_app_kotlin_typechecks_against_api_stubs(junit_run):
    """The app's Kotlin compiles against stubs of the Android/LiteRT API (tools/api-stubs); not the real SDK."""
    _ok(junit_run)
    classes = CORE / "build" / "kotlinc" / "classes"  # what run-tests.sh just compiled
    done = subprocess.run(
        [sys.executable, str(ANDROID / "tools" / "typecheck_app.py"), "--core-classes", str(classes)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
