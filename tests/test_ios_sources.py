"""apps/ios without a Swift toolchain: the sources parse, the plists and project spec hold what the app
needs, the Codable structs decode the fields of the shared JSON Schema (runtime/bundle.schema.json), and what the
Swift core hard-codes (record keys, hand-computed statistics, the timing order) agrees with the Python runtime.

Nothing here compiles or runs Swift (no Swift compiler on Linux here); the sources are parsed with tree-sitter's
Swift grammar, which catches syntax slips but not type errors. The XCTests (model.json and golden.json decoding,
the self-check's comparison) run only with `swift test` on a Mac or a Linux Swift toolchain.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from deepsquare.runtime import records, timing
from deepsquare.runtime.bench_report import load_records
from deepsquare.runtime.records import BenchRecord

ROOT = Path(__file__).parents[1]
IOS = ROOT / "apps" / "ios"
CORE = IOS / "DeepSquareCore"
CORE_SOURCES = CORE / "Sources" / "DeepSquareCore"
CORE_TESTS = CORE / "Tests" / "DeepSquareCoreTests"
APP = IOS / "DeepSquareDemo"
SCHEMA = ROOT / "runtime" / "bundle.schema.json"
SWIFT_FILES = sorted(IOS.rglob("*.swift"))

try:
    import tree_sitter
    import tree_sitter_swift
except ImportError:  # the dev extra installs both; CI (DEEPSQUARE_REQUIRE_APP_TOOLS=1) must have them
    if os.environ.get("DEEPSQUARE_REQUIRE_APP_TOOLS") == "1":
        raise
    pytest.skip("tree-sitter / tree-sitter-swift not installed (pip install -e .[dev])", allow_module_level=True)


def _parser():
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))


PARSER = _parser()


def first_bad_node(node):
    """The first ERROR or MISSING node under ``node`` (document order), or None."""
    if node.is_error or node.is_missing:
        return node
    if not node.has_error:
        return None
    for child in node.children:
        bad = first_bad_node(child)
        if bad is not None:
            return bad
    return node  # has_error without a bad child: report the node itself


def parse_problem(source: bytes, name: str) -> str | None:
    tree = PARSER.parse(source)
    bad = first_bad_node(tree.root_node)
    if bad is None:
        return None
    line = bad.start_point[0] + 1
    lines = source.decode("utf-8", "replace").splitlines()
    text = lines[bad.start_point[0]].strip() if bad.start_point[0] < len(lines) else "<end of file>"
    kind = "MISSING " + bad.type if bad.is_missing else bad.type
    return f"{name}:{line}: {kind} near {text!r}"


def swift_imports(path: Path) -> set[str]:
    tree = PARSER.parse(path.read_bytes())
    found = set()
    for child in tree.root_node.children:
        if child.type == "import_declaration":
            words = child.text.decode().split()
            found.add(words[-1])
    return found


# ---- the sources parse ----------------------------------------------------------------------------


def test_the_parse_check_catches_broken_swift():
    broken = b"import Foundation\n\nfunc ok() -> Int {\n    return 1\n}\n\nfunc broken( {\n    let x = \n}\n"
    problem = parse_problem(broken, "broken.swift")
    assert problem is not None and problem.startswith("broken.swift:7:"), problem
    unclosed = b"struct A {\n    var x: Int = 1\n"
    assert parse_problem(unclosed, "unclosed.swift") is not None
    assert parse_problem(b"struct A {\n    var x: Int = 1\n}\n", "fine.swift") is None


def test_the_expected_sources_are_there():
    names = {p.relative_to(IOS).as_posix() for p in SWIFT_FILES}
    want = {
        "DeepSquareCore/Package.swift",
        "DeepSquareCore/Sources/DeepSquareCore/BundleMeta.swift",
        "DeepSquareCore/Sources/DeepSquareCore/BenchRecord.swift",
        "DeepSquareCore/Sources/DeepSquareCore/Classification.swift",
        "DeepSquareCore/Sources/DeepSquareCore/Statistics.swift",
        "DeepSquareCore/Sources/DeepSquareCore/Timing.swift",
        "DeepSquareCore/Sources/DeepSquareCore/SelfCheck.swift",
        "DeepSquareCore/Tests/DeepSquareCoreTests/Fixtures.swift",
        "DeepSquareCore/Tests/DeepSquareCoreTests/SelfCheckTests.swift",
        "DeepSquareCore/Tests/DeepSquareCoreTests/BundleMetaTests.swift",
        "DeepSquareCore/Tests/DeepSquareCoreTests/RecordTests.swift",
        "DeepSquareCore/Tests/DeepSquareCoreTests/StatisticsTests.swift",
        "DeepSquareCore/Tests/DeepSquareCoreTests/TimingTests.swift",
        "DeepSquareDemo/DeepSquareDemoApp.swift",
        "DeepSquareDemo/ContentView.swift",
        "DeepSquareDemo/Classifier.swift",
        "DeepSquareDemo/LatencyView.swift",
        "DeepSquareDemo/LatencyBenchmark.swift",
        "DeepSquareDemo/CameraPicker.swift",
    }
    assert want <= names, sorted(want - names)
    assert "DeepSquareCore/Sources/DeepSquareCore/JSONValue.swift" not in names  # Codable, not a JSON value type


@pytest.mark.parametrize("path", SWIFT_FILES, ids=lambda p: p.relative_to(IOS).as_posix())
def test_swift_file_parses(path: Path):
    problem = parse_problem(path.read_bytes(), path.relative_to(ROOT).as_posix())
    assert problem is None, problem


# ---- the core is portable -------------------------------------------------------------------------


def test_the_core_imports_only_foundation():
    sources = sorted(CORE_SOURCES.glob("*.swift"))
    assert len(sources) >= 5
    for path in sources:
        assert swift_imports(path) == {"Foundation"}, path.name
        text = path.read_text()
        for framework in ("UIKit", "CoreML", "Vision", "SwiftUI", "AppKit"):
            assert not re.search(rf"\bimport\s+{framework}\b", text), f"{path.name} imports {framework}"


def test_the_core_tests_import_only_the_core_foundation_and_xctest():
    for path in sorted(CORE_TESTS.glob("*.swift")):
        assert swift_imports(path) <= {"DeepSquareCore", "Foundation", "XCTest"}, path.name


def test_the_app_imports_the_frameworks_it_uses():
    assert {"CoreML", "Vision", "DeepSquareCore"} <= swift_imports(APP / "Classifier.swift")
    assert {"PhotosUI", "SwiftUI"} <= swift_imports(APP / "ContentView.swift")


def test_package_manifest():
    text = (CORE / "Package.swift").read_text()
    assert text.startswith("// swift-tools-version: 5.9")
    assert ".iOS(.v16)" in text and ".macOS(.v13)" in text
    assert '.testTarget(name: "DeepSquareCoreTests"' in text


# ---- what the Swift core hard-codes equals the Python runtime -------------------------------------


def coding_keys(path: Path, owner: str) -> list[str]:
    """The JSON keys of struct ``owner``'s CodingKeys enum: each case's raw value, or its name."""
    text = path.read_text()
    text = text[text.index(f"public struct {owner}:") :]
    match = re.search(r"enum CodingKeys\b[^{]*\{(.*?)\n\s*\}", text, re.S)
    assert match, f"no CodingKeys of {owner} in {path.name}"
    keys = []
    for line in match.group(1).splitlines():
        case = re.match(r'\s*case\s+(\w+)(?:\s*=\s*"([^"]+)")?\s*$', line)
        if case:
            keys.append(case.group(2) or case.group(1))
    return keys


def test_record_coding_keys_are_the_python_record_fields():
    swift_keys = coding_keys(CORE_SOURCES / "BenchRecord.swift", "BenchRecord")
    assert swift_keys == [f.name for f in fields(BenchRecord)]
    # the encoder writes every key (nulls too): one encode call per key
    text = (CORE_SOURCES / "BenchRecord.swift").read_text()
    text = text[text.index("public struct BenchRecord:") :]
    body = text[text.index("public func encode(to encoder: Encoder)") :]
    body = body[: body.index("\n    }\n")]
    encoded = re.findall(r"forKey: \.(\w+)\)|encodeOrNull\(\w+, \.(\w+),", body)
    cases = re.findall(r"case\s+(\w+)", re.search(r"enum CodingKeys[^{]*\{(.*?)\n\s*\}", text, re.S).group(1))
    assert sorted(a or b for a, b in encoded) == sorted(cases)
    assert 'schemaID = "deepsquare-bench-record/1"' in text and records.SCHEMA == "deepsquare-bench-record/1"
    assert 'runtimeName = "coreml-ios"' in text


def test_the_swift_test_lists_the_same_record_keys():
    text = (CORE_TESTS / "RecordTests.swift").read_text()
    block = re.search(r"schemaKeys: Set<String> = \[(.*?)\]", text, re.S).group(1)
    assert set(re.findall(r'"(\w+)"', block)) == {f.name for f in fields(BenchRecord)}


def test_the_example_records_are_what_deepsquare_bench_reads():
    path = CORE / "Fixtures" / "example-records.json"
    rows = load_records([path])
    assert len(rows) == 1
    row = rows[0]
    assert row["runtime"] == "coreml-ios" and row["threads"] is None
    assert row["extra"] == {"compute_units": "cpuOnly", "input_size": 64}
    # the numbers the Swift RecordTests compute from [3, 1, 2, 4] are Python's record_from_times
    want = records.record_from_times(
        [3, 1, 2, 4],
        model=row["model"],
        variant=row["variant"],
        runtime="coreml-ios",
        threads=None,
        warmup=5,
        init_ms=41.25,
        machine=row["machine"],
        extra=row["extra"],
    ).to_dict()
    numbers = [k for k, v in want.items() if isinstance(v, float)]
    assert [row[k] for k in numbers] == pytest.approx([want[k] for k in numbers], abs=1e-12)
    # record_from_times adds the percentiles' intervals to extra; the Swift core does not compute them
    assert row["extra"].items() <= want["extra"].items()
    same = [k for k in want if k not in numbers and k != "extra"]
    assert {k: row[k] for k in same} == {k: want[k] for k in same}
    assert set(json.loads(path.read_text())[0]) == {f.name for f in fields(BenchRecord)}


def _schema() -> dict:
    if not SCHEMA.is_file():
        pytest.skip("runtime/bundle.schema.json is not there yet")
    return json.loads(SCHEMA.read_text())


def test_codable_keys_are_fields_of_the_shared_schema():
    """Every key the Swift structs decode is a field of the JSON Schema, and every required field the app needs is
    decoded (provenance, free form and informative, and the golden's reference are left out on purpose)."""
    definitions = _schema()["definitions"]
    bundle = definitions["bundle_v2"]
    swift_bundle = coding_keys(CORE_SOURCES / "BundleMeta.swift", "BundleMeta")
    assert set(swift_bundle) <= set(bundle["properties"])
    assert set(bundle["required"]) - set(swift_bundle) == {"provenance"}
    entry = definitions["format_entry_v2"]
    assert set(coding_keys(CORE_SOURCES / "BundleMeta.swift", "FormatEntry")) == set(entry["properties"])
    golden = definitions["golden"]
    swift_golden = coding_keys(CORE_SOURCES / "SelfCheck.swift", "GoldenFile")
    assert set(swift_golden) == set(golden["properties"]) - {"reference"}
    golden_format = golden["properties"]["formats"]["additionalProperties"]
    assert set(coding_keys(CORE_SOURCES / "SelfCheck.swift", "GoldenFormat")) == set(golden_format["properties"]) - {
        "top5"
    }
    assert '"deepsquare-golden/1"' in (CORE_SOURCES / "SelfCheck.swift").read_text()


def test_hand_computed_percentiles_are_pythons():
    text = (CORE_TESTS / "StatisticsTests.swift").read_text()
    calls = re.findall(r"LatencyStats\.percentile\(\[([\d, .]+)\], (\d+)\), ([\d.]+)", text)
    assert len(calls) >= 6
    for values, q, want in calls:
        ordered = [float(v) for v in values.split(",")]
        assert records.percentile(ordered, float(q)) == pytest.approx(float(want), abs=1e-12), (values, q)


def test_hand_computed_ratio_interval_is_pythons():
    ratio, low, high = timing.ratio_interval([2, 4], [1, 1])
    assert (ratio, low, high) == pytest.approx((2**1.5, 2 ** (1.5 - 0.98), 2 ** (1.5 + 0.98)), abs=1e-12)
    text = (CORE_TESTS / "StatisticsTests.swift").read_text()
    assert "pow(2, 1.5 - 0.98)" in text and "pow(2, 1.5 + 0.98)" in text


def test_swift_timing_order_is_the_python_protocol():
    """TimingTests expects an order of opens and runs; Python's time_interleaved produces the same."""
    text = (CORE_TESTS / "TimingTests.swift").read_text()
    block = re.search(r"let expected = \[(.*?)\]", text, re.S).group(1)
    swift_events = re.findall(r'"(\w+)"', block)
    events: list[str] = []

    def opener(i: int):
        def open_session():
            events.append(f"open{i}")
            return (lambda: events.append(f"run{i}")), 0.0

        return open_session

    result = timing.time_interleaved([opener(i) for i in range(3)], timing.TimingPlan(runs=3, warmup=1))
    assert events == swift_events
    assert result.rounds == 3
    assert "TimingPlan(runs: 3, warmup: 1)" in text
    for runs, want in ((30, [10, 10, 10]), (31, [11, 10, 10]), (2, [1, 1]), (0, [])):
        assert timing.block_plan(3, timing.TimingPlan(runs=runs)) == want
        assert f"TimingPlan(runs: {runs}, warmup: 5).blocks(models: 3), {want}" in text
    assert timing.progress_total(3, timing.TimingPlan(runs=30, warmup=5)) == 45


def test_the_record_fixture_the_swift_tests_read_is_there():
    fixture = re.search(
        r'appendingPathComponent\("(\.\./\.\./Fixtures/[^"]+)"\)', (CORE_TESTS / "RecordTests.swift").read_text()
    ).group(1)
    assert (CORE_TESTS / fixture).resolve().is_file()


# ---- the app: plist, project, classifier, install script ------------------------------------------


def test_info_plist_has_the_usage_descriptions():
    plists = sorted(IOS.rglob("Info.plist"))
    assert plists, "no Info.plist under apps/ios"
    for path in plists:
        with path.open("rb") as f:
            info = plistlib.load(f)
        for key in ("NSCameraUsageDescription", "NSPhotoLibraryUsageDescription"):
            assert isinstance(info.get(key), str) and len(info[key]) > 20, f"{path}: {key}"
        assert info.get("UIFileSharingEnabled") is True  # the records JSON shows in the Files app


def test_project_spec():
    text = (IOS / "project.yml").read_text()
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is there in the project's venv
        yaml = None
    if yaml is None:
        for needle in (
            "targets:",
            "DeepSquareDemo:",
            "type: application",
            "path: DeepSquareCore",
            "INFOPLIST_FILE: DeepSquareDemo/Info.plist",
            "COREML_CODEGEN_LANGUAGE: None",
        ):
            assert needle in text, needle
        return
    spec = yaml.safe_load(text)
    target = spec["targets"]["DeepSquareDemo"]
    assert target["type"] == "application" and target["platform"] == "iOS"
    assert str(target["deploymentTarget"]) == "16.0"
    assert (IOS / spec["packages"]["DeepSquareCore"]["path"] / "Package.swift").is_file()
    assert {"package": "DeepSquareCore", "product": "DeepSquareCore"} in target["dependencies"]
    for source in target["sources"]:
        assert (IOS / source["path"]).is_dir()
    settings = target["settings"]["base"]
    assert (IOS / settings["INFOPLIST_FILE"]).is_file()
    assert settings["COREML_CODEGEN_LANGUAGE"] == "None"


def test_classifier_uses_vision_scale_fill_and_the_model_metadata():
    text = (APP / "Classifier.swift").read_text()
    assert "VNCoreMLRequest(model:" in text and "VNCoreMLModel(for:" in text
    assert "VNImageCropAndScaleOption.scaleFill" in text
    assert 'forResource: "model", withExtension: "json"' in text  # labels and sizes from model.json
    assert "SelfCheck.compare(" in text and "GoldenFile.load(" in text  # the golden self-check, with Core ML
    bench = (APP / "LatencyBenchmark.swift").read_text()
    assert "timeInterleaved(" in bench and "ComputeUnitsName.allCases" in bench
    assert "BenchRecord.fromTiming(" in bench and "BenchRecord.encodeList(" in bench
    assert "ShareLink(item:" in (APP / "LatencyView.swift").read_text()
    assert "PhotosPicker(" in (APP / "ContentView.swift").read_text()
    assert "UIImagePickerController" in (APP / "CameraPicker.swift").read_text()


def _fake_bundle(
    folder: Path, *, schema: str = "deepsquare-bundle/2", manifest: bool = True, golden: bool = True
) -> Path:
    folder.mkdir()
    meta = {
        "schema": schema,
        "arch": "vanilla_cnn",
        "variant": "sp+ss",
        "classes": ["a", "b"],
        "input_size": 8,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "golden": "golden.json" if golden else None,
        "formats": {
            "coreml": {
                "file": "model.mlpackage",
                "layout": "image",
                "input_name": "image",
                "output_name": "classLabel",
                "input_dtype": "image",
            }
        },
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2))
    package = folder / "model.mlpackage"
    (package / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (package / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"\x00")
    if manifest:
        (package / "Manifest.json").write_text("{}")
    if golden:
        (folder / "golden.json").write_text("{}")
        (folder / "golden.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed")
def test_install_bundle_script(tmp_path: Path):
    app = tmp_path / "ios"
    app.mkdir()
    shutil.copy(IOS / "install-bundle.sh", app / "install-bundle.sh")
    env = {**os.environ, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def install(bundle: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(app / "install-bundle.sh"), str(bundle)], capture_output=True, text=True, env=env, timeout=60
        )

    good = install(_fake_bundle(tmp_path / "good"))
    assert good.returncode == 0, good.stderr
    assert (app / "DeepSquareDemo" / "Model" / "model.mlpackage" / "Manifest.json").is_file()
    assert (app / "DeepSquareDemo" / "Model" / "model.json").is_file()
    assert (app / "DeepSquareDemo" / "Model" / "golden.png").is_file()
    no_golden = install(_fake_bundle(tmp_path / "v1", schema="deepsquare-bundle/1", golden=False))
    assert no_golden.returncode == 0, no_golden.stderr
    assert not (app / "DeepSquareDemo" / "Model" / "golden.png").exists()  # the stale one is gone
    bad_schema = install(_fake_bundle(tmp_path / "old", schema="deepsquare-bundle/0"))
    assert bad_schema.returncode != 0 and "deepsquare-bundle/1" in bad_schema.stderr
    no_manifest = install(_fake_bundle(tmp_path / "broken", manifest=False))
    assert no_manifest.returncode != 0 and "Manifest.json" in no_manifest.stderr
    missing = install(tmp_path / "nowhere")
    assert missing.returncode != 0 and "is not a folder" in missing.stderr


def test_readme_says_what_was_not_run():
    text = (IOS / "README.md").read_text()
    assert "xcodegen" in text and "install-bundle.sh" in text and "deepsquare bench --add-records" in text
    assert "tree-sitter" in text
    assert re.search(r"not (been )?(built|compiled) or run", text) or "neither" in text.lower()


def test_the_mockup_figure_is_there():
    figure = ROOT / "docs" / "apps" / "ios-mockup.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (IOS / "tools" / "render_mockup.py").is_file()
