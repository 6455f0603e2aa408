"""apps/android: the app's pure-Kotlin core, compiled with kotlinc and run under JUnit 4 on the JVM, reads a real
exported .tflite's embedded bundle exactly as model.json says, reproduces the golden pixels and tensors, and writes
benchmark records that ``deepsquare bench --add-records`` loads. The Gradle/Android part cannot be built here (no
Android SDK); what can be checked without it is: the XML parses, the manifest asks for the camera, the app uses the
core as a module rather than copies of it.

The JVM tests need ``bash apps/android/setup.sh`` (kotlinc from npm, a JDK and JUnit 4 from Debian). Where a tool is
missing they skip, except when DEEPSQUARE_REQUIRE_APP_TOOLS=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

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


def _need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("DEEPSQUARE_REQUIRE_APP_TOOLS") == "1":
            pytest.fail(f"{what} (DEEPSQUARE_REQUIRE_APP_TOOLS=1)")
        pytest.skip(what)


def need_jvm_tools() -> None:
    _need(KOTLINC.is_file(), "kotlinc is not installed: bash apps/android/setup.sh")
    _need(shutil.which("java") is not None, "no JDK (java): bash apps/android/setup.sh")
    _need(Path("/usr/share/java/junit4.jar").is_file(), "JUnit 4 is not installed: bash apps/android/setup.sh")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real bundle: a vanilla_cnn sp+ss checkpoint exported with deepsquare-export --to tflite."""
    root = tmp_path_factory.mktemp("android")
    ckpt = write_checkpoint(root, "vanilla_cnn", "sp+ss", size=32)
    out = root / "bundle"
    subprocess.run(
        [str(BIN / "deepsquare-export"), str(ckpt), "--to", "tflite", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def junit_run(request, tmp_path_factory) -> dict:
    """run-tests.sh once, with the real .tflite; what the Kotlin tests read and wrote."""
    need_jvm_tools()  # before exporting: a missing toolchain skips at once
    exported = request.getfixturevalue("exported")
    out = tmp_path_factory.mktemp("android-out")
    proc = subprocess.run(
        [
            "bash",
            str(CORE / "run-tests.sh"),
            "--tflite",
            str(exported / "model.tflite"),
            "--record-out",
            str(out / "records.json"),
            "--metadata-out",
            str(out / "metadata.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {"proc": proc, "records": out / "records.json", "metadata": out / "metadata.json"}


def test_junit_tests_pass(junit_run):
    proc = junit_run["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "OK (" in proc.stdout
    count = int(proc.stdout.split("OK (")[1].split(" test")[0])
    assert count >= 20, proc.stdout
    # The golden comparisons ran (not skipped) and the real .tflite was read.
    assert "GoldenTest: max |probability - golden|" in proc.stdout
    assert "TfliteMetadataTest: model.tflite:" in proc.stdout


def test_kotlin_reads_the_embedded_bundle_as_model_json_says(junit_run, exported):
    assert junit_run["proc"].returncode == 0, junit_run["proc"].stdout[-4000:]
    read = json.loads(junit_run["metadata"].read_text())
    sidecar = json.loads((exported / "model.json").read_text())
    from deepsquare.export.tflite_metadata import tflite_metadata

    embedded = tflite_metadata(exported / "model.tflite")  # the Python reader, for comparison
    assert read["metadata_names"] == list(embedded)
    assert read["bundle_json_text"] == embedded["deepsquare_bundle"].decode()
    assert read["labels"] == embedded["labels.txt"].decode().split("\n") == sidecar["classes"]
    # Every field, as the Kotlin BundleMeta parsed it and wrote it back; but the sidecar's sha256 of the model files,
    # which a file cannot carry of itself (the apps do not check it: the Python load path does).
    assert read["bundle"] == {k: v for k, v in sidecar.items() if k != "sha256"}
    size = sidecar["input_size"]
    assert read["input_shape"] == [1, size, size, 3]
    assert read["output_shape"] == [1, len(sidecar["classes"])]


def test_kotlin_records_load_as_benchmark_records(junit_run):
    assert junit_run["proc"].returncode == 0, junit_run["proc"].stdout[-4000:]
    records = load_records([junit_run["records"]])
    assert [r["extra"]["delegate"] for r in records] == ["xnnpack", "gpu"]
    for r in records:
        times = sorted(r["extra"]["test_times_ms"])
        assert r["runtime"] == "litert-android"
        assert r["runs"] == len(times)
        assert r["p50_ms"] == percentile(times, 50)
        assert r["p90_ms"] == percentile(times, 90)
        assert (r["min_ms"], r["max_ms"]) == (times[0], times[-1])
        assert math.isclose(r["mean_ms"], statistics.fmean(times), rel_tol=1e-12)
        assert math.isclose(r["std_ms"], statistics.stdev(times), rel_tol=1e-12)
        assert r["extra"]["input_size"] == 64
    assert records[0]["threads"] == 4 and records[1]["threads"] is None


def test_project_structure_without_gradle():
    manifest = APP / "src" / "main" / "AndroidManifest.xml"
    xml_files = [manifest, *sorted((APP / "src" / "main" / "res").rglob("*.xml"))]
    assert len(xml_files) >= 5
    for path in xml_files:
        ET.parse(path)  # well-formed, or ParseError names the line
    android = "{http://schemas.android.com/apk/res/android}"
    root = ET.parse(manifest).getroot()
    permissions = [e.get(f"{android}name") for e in root.iter("uses-permission")]
    assert "android.permission.CAMERA" in permissions
    activities = {e.get(f"{android}name") for e in root.iter("activity")}
    assert {".MainActivity", ".LatencyActivity"} <= activities
    for activity in activities:
        assert (APP / "src/main/kotlin/ai/deepsquare/android" / f"{activity.lstrip('.')}.kt").is_file()
    # Every layout id the Kotlin code looks up exists.
    ids = set()
    for path in (APP / "src" / "main" / "res" / "layout").glob("*.xml"):
        ids |= {e.get(f"{android}id").split("/")[-1] for e in ET.parse(path).getroot().iter() if e.get(f"{android}id")}
    app_code = "\n".join(p.read_text() for p in (APP / "src" / "main" / "kotlin").rglob("*.kt"))
    used = set(re.findall(r"R\.id\.(\w+)", app_code))
    assert used and used <= ids, used - ids

    settings = (ANDROID / "settings.gradle.kts").read_text()
    assert 'include(":core")' in settings and 'include(":app")' in settings
    app_build = (APP / "build.gradle.kts").read_text()
    assert 'implementation(project(":core"))' in app_build
    assert "libs.litert" in app_build and "compileSdk = 35" in app_build
    core_code = [line.split("//")[0] for line in (CORE / "build.gradle.kts").read_text().splitlines()]
    assert "kotlin.jvm" in "".join(core_code) and "android" not in "".join(core_code).lower()  # a plain JVM library
    assert (ANDROID / "gradle" / "libs.versions.toml").is_file()
    # The core is used, not copied: no Kotlin file or top-level declaration of core appears in app.
    core_files = {p.name for p in (CORE / "src" / "main").rglob("*.kt")}
    app_files = list((APP / "src").rglob("*.kt"))
    assert not core_files & {p.name for p in app_files}
    assert "package ai.deepsquare.core" not in app_code
    for name in ("object Preprocess", "object Classify", "class BundleMeta", "class TfliteModel", "object Json"):
        assert name not in app_code
    core_imports = set(re.findall(r"import ai\.deepsquare\.core\.(\w+)", app_code))
    assert {"Preprocess", "Classify", "EmbeddedBundle", "BenchRecord", "Benchmark"} <= core_imports


def test_install_bundle_script_checks_its_input(exported, tmp_path):
    # A copy of the project's files the script touches, so the real assets folder is left alone.
    copy = tmp_path / "android"
    (copy / "app" / "src" / "main" / "assets").mkdir(parents=True)
    shutil.copy(ANDROID / "install-bundle.sh", copy / "install-bundle.sh")
    script = ["bash", str(copy / "install-bundle.sh")]
    bad = subprocess.run([*script, str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert bad.returncode != 0 and "model.tflite" in bad.stderr
    good = subprocess.run([*script, str(exported)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assets = copy / "app" / "src" / "main" / "assets"
    assert (assets / "model.tflite").read_bytes() == (exported / "model.tflite").read_bytes()
    assert json.loads((assets / "model.json").read_text()) == json.loads((exported / "model.json").read_text())
    onnx_only = tmp_path / "onnx-only"
    onnx_only.mkdir()
    (onnx_only / "model.tflite").write_bytes(b"not a flatbuffer")
    wrong = subprocess.run([*script, str(onnx_only)], capture_output=True, text=True)
    assert wrong.returncode != 0 and "TFL3" in wrong.stderr


@pytest.mark.slow
def test_app_kotlin_typechecks_against_api_stubs(junit_run):
    """The app's Kotlin compiles against stubs of the Android/LiteRT API (tools/api-stubs); not the real SDK."""
    assert junit_run["proc"].returncode == 0, junit_run["proc"].stdout[-4000:]
    classes = CORE / "build" / "kotlinc" / "classes"  # what run-tests.sh just compiled
    done = subprocess.run(
        [sys.executable, str(ANDROID / "tools" / "typecheck_app.py"), "--core-classes", str(classes)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
