"""``pip install .`` carries everything ``deepsquare serve`` needs: the wheel holds the package (the root's
``__init__.py`` as ``deepsquare/__init__.py``, the three subpackages) and the web app as ``deepsquare/webapp``
(the page and, of node_modules, only the files runtime/web.py VENDORED serves), nothing else; installed into a
fresh virtual environment it serves the page from outside the clone; built without node_modules it says what is
missing and how to get it.

The wheel is built from a copy of the source tree (the files git tracks or would track, node_modules linked
in): building in the clone would write its build/ and deepsquare.egg-info, which the development install and
other runs share, and a stale build/lib would leak removed files into the wheel. The fresh environment gets
torch, numpy etc. through a .pth line naming this environment's site-packages, not by reinstalling them.
The tests that build a wheel are marked slow (about 45 s together on 2 cores). The complete wheel needs
apps/web/node_modules (``bash apps/web/setup.sh``); where it is missing those tests skip, except when
DEEPSQUARE_REQUIRE_APP_TOOLS=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from deepsquare.runtime import web
from deepsquare.runtime.bundle import BundleMeta, FormatEntry

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "web"
SUBPACKAGES = ("train", "export", "runtime")
PACKAGE_DATA = {"runtime": ("bundle.schema.json",)}  # the subpackages' files besides modules (pyproject package-data)
# node_modules files a wheel carries besides VENDORED: each runtime package's package.json (version, license)
PACKAGE_JSONS = (
    "onnxruntime-web/package.json",
    "@litertjs/core/package.json",
    "@litertjs/wasm-utils/package.json",
    "ajv-dist/package.json",
)
MAX_WHEEL_MB = 25  # 12.9 MB with onnxruntime-web 1.30.0 and @litertjs/core 2.5.3; the whole node_modules is ~250 MB
QUIET = ["--quiet", "--disable-pip-version-check", "--no-index"]


VENDORED_AND_JSONS = (*web.VENDORED, *PACKAGE_JSONS)


def have_node_modules() -> bool:
    return all((APP / "node_modules" / v).is_file() for v in VENDORED_AND_JSONS)


def need_node_modules() -> None:
    if not have_node_modules():
        what = "apps/web/node_modules is not set up: bash apps/web/setup.sh"
        if os.environ.get("DEEPSQUARE_REQUIRE_APP_TOOLS") == "1":
            pytest.fail(f"{what} (DEEPSQUARE_REQUIRE_APP_TOOLS=1)")
        pytest.skip(what)


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def source_tree(dest: Path, with_node_modules: bool) -> Path:
    """The clone's source files (tracked, or untracked and not ignored) copied to ``dest``, node_modules linked."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git clone (git ls-files) to copy its source tree")
    listed = run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out, as from a fresh checkout
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    if with_node_modules:
        (dest / "apps" / "web" / "node_modules").symlink_to(APP / "node_modules", target_is_directory=True)
    return dest


def build_wheel(source: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", *QUIET, "--no-deps", "--no-build-isolation", "-w", out, source])
    (wheel,) = out.glob("deepsquare-*.whl")
    return wheel


def build_sdist(source: Path, out: Path) -> Path:
    """The PEP 517 hook that ``python -m build --sdist`` calls (the build package is not installed here)."""
    out.mkdir(parents=True, exist_ok=True)
    hook = f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"
    run([sys.executable, "-c", hook], cwd=source)
    (sdist,) = out.glob("deepsquare-*.tar.gz")
    return sdist


@dataclass
class Venv:
    root: Path
    python: Path
    purelib: Path

    def script(self, name: str) -> Path:
        return self.root / "bin" / name


def fresh_venv(root: Path, wheel: Path) -> Venv:
    """A new environment with only ``wheel`` installed; this environment's site-packages appended for torch etc."""
    run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    run([sys.executable, "-m", "pip", "--python", python, "install", *QUIET, "--no-deps", wheel])
    # A path line appends that folder to sys.path, after the fresh site-packages, and runs none of its .pth files:
    # the development install's link to the clone stays out.
    (purelib / "deepsquare_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Venv(root, python, purelib)


def outside_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}


def tiny_bundle(folder: Path) -> Path:
    folder.mkdir(parents=True)
    meta = BundleMeta(
        arch="vanilla_cnn",
        variant="gap",
        classes=["a", "b"],
        input_size=32,
        mean=[0.5, 0.5, 0.5],
        std=[0.25, 0.25, 0.25],
        formats={"onnx": FormatEntry(file="model.onnx", layout="NCHW", input_name="input", output_name="logits")},
    )
    (folder / "model.json").write_text(meta.to_json())
    (folder / "model.onnx").write_bytes(b"stand-in model bytes")
    return folder


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


# ---- the wheel and the sdist, built once -----------------------------------------------------------------------


@dataclass
class Built:
    source: Path
    wheel: Path
    names: list[str]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    need_node_modules()
    root = tmp_path_factory.mktemp("wheel")
    source = source_tree(root / "src", with_node_modules=True)
    wheel = build_wheel(source, root / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    return Built(source, wheel, names)


@pytest.mark.slow  # ~10-20 s each on 2 cores: builds a wheel (and a venv)
def test_wheel_holds_the_package_and_the_served_web_app_only(built):
    names = set(built.names)
    (info,) = {n.split("/")[0] for n in names} - {"deepsquare"}
    assert info.startswith("deepsquare-") and info.endswith(".dist-info"), info
    # The root's __init__.py is the package; no other root file (README.md, pyproject.toml, ...) is swallowed into it.
    assert {n.split("/")[1] for n in names if n.startswith("deepsquare/")} == {"__init__.py", *SUBPACKAGES, "webapp"}
    with zipfile.ZipFile(built.wheel) as archive:
        assert archive.read("deepsquare/__init__.py") == (ROOT / "__init__.py").read_bytes()
    # Every module of the subpackages (no subpackage left out of pyproject's list), and no tests or apps/android.
    for sub in SUBPACKAGES:
        want = {f"deepsquare/{sub}/{p.relative_to(built.source / sub)}" for p in (built.source / sub).rglob("*.py")}
        want |= {f"deepsquare/{sub}/{name}" for name in PACKAGE_DATA.get(sub, ())}
        assert {n for n in names if n.startswith(f"deepsquare/{sub}/")} == want, sub
    assert not [n for n in names if "tests/" in n or "android" in n or "__pycache__" in n or n.endswith(".pyc")]
    # The web app: the page, the headless driver, and of node_modules what the server serves (+ package.json).
    page = {f"src/{p.name}" for p in (APP / "src").iterdir() if p.is_file()}
    want = {"index.html", "tools/drive.mjs", *page, *(f"node_modules/{v}" for v in VENDORED_AND_JSONS)}
    assert {n.removeprefix("deepsquare/webapp/") for n in names if n.startswith("deepsquare/webapp/")} == want
    data = {f"deepsquare/{sub}/{name}" for sub, files in PACKAGE_DATA.items() for name in files}
    assert {n for n in names if not n.endswith(".py") and not n.startswith(("deepsquare/webapp/", info))} == data
    assert built.wheel.stat().st_size < MAX_WHEEL_MB * 2**20, f"{built.wheel.stat().st_size / 2**20:.1f} MB"


@pytest.mark.slow  # ~10-20 s each on 2 cores: builds a wheel (and a venv)
def test_sdist_builds_the_same_wheel(built, tmp_path):
    """``python -m build`` makes the wheel from the sdist: the sdist must carry the web app's files too."""
    sdist = build_sdist(built.source, tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        members = {n.removeprefix(f"{top}/") for n in archive.getnames()}
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.11.4+
        archive.extractall(tmp_path / "unpacked", **safe)
    assert {"__init__.py", "apps/web/index.html"} <= members
    assert {f"apps/web/node_modules/{v}" for v in web.VENDORED} <= members
    wheel = build_wheel(tmp_path / "unpacked" / top, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        assert sorted(archive.namelist()) == sorted(built.names)


@pytest.mark.slow  # ~10-20 s each on 2 cores: builds a wheel (and a venv)
def test_installed_wheel_serves_the_page_outside_the_clone(built, tmp_path):
    venv = fresh_venv(tmp_path / "venv", built.wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = outside_env()
    probe = (
        "import json, deepsquare; from deepsquare.runtime import web; "
        "print(json.dumps([deepsquare.__file__, str(web.default_app_dir()), deepsquare.__version__]))"
    )
    package, app_dir, version = json.loads(run([venv.python, "-c", probe], cwd=elsewhere, env=env).stdout)
    assert Path(package).is_relative_to(venv.purelib), package  # the wheel's copy, not the clone's
    assert Path(app_dir) == venv.purelib / "deepsquare" / "webapp" and version != "0+unknown"
    assert "--headless-bench" in run([venv.script("deepsquare"), "serve", "--help"], cwd=elsewhere, env=env).stdout
    bundle = tiny_bundle(tmp_path / "bundle")
    # --headless-bench needs npm's playwright-core (and Chromium): development tools that a wheel does not carry
    bench = [venv.script("deepsquare"), "serve", bundle, "--headless-bench", "--out", tmp_path / "web"]
    result = subprocess.run([str(c) for c in bench], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and not (tmp_path / "web").exists(), result.stderr
    assert "playwright-core, a development tool" in result.stderr or "needs Chromium" in result.stderr, result.stderr

    command = [venv.script("deepsquare"), "serve", bundle, "--port", "0"]
    with subprocess.Popen(
        command, cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            first = proc.stdout.readline()
            assert first.startswith(f"serving {bundle} at http://127.0.0.1:"), first + proc.stderr.read()
            url = first.split(" at ")[-1].strip()
            status, headers, body = fetch(url)
            assert status == 200 and b"importmap" in body and headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            wasm = "onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.wasm"
            status, headers, body = fetch(f"{url}node_modules/{wasm}")
            assert status == 200 and headers["Content-Type"] == "application/wasm"
            assert body == (APP / "node_modules" / wasm).read_bytes()
            assert json.loads(fetch(f"{url}bundle/0/model.json")[2])["classes"] == ["a", "b"]
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out, err


@pytest.mark.slow  # ~10-20 s each on 2 cores: builds a wheel (and a venv)
def test_wheel_without_node_modules_says_what_is_missing(tmp_path):
    """A wheel built before ``bash apps/web/setup.sh`` (or from a git URL) installs; serve names the fix."""
    source = source_tree(tmp_path / "src", with_node_modules=False)
    wheel = build_wheel(source, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "deepsquare/webapp/index.html" in names and not [n for n in names if "node_modules" in n]
    venv = fresh_venv(tmp_path / "venv", wheel)
    bundle = tiny_bundle(tmp_path / "bundle")
    result = subprocess.run(
        [venv.script("deepsquare"), "serve", bundle, "--port", "0"],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    missing = venv.purelib / "deepsquare" / "webapp" / "node_modules" / web.VENDORED[0]
    assert f"{missing} and {len(web.VENDORED) - 1} more missing" in result.stderr, result.stderr
    assert "bash apps/web/setup.sh" in result.stderr and "pip install ." in result.stderr


def test_app_dir_check_names_the_missing_files(tmp_path):
    """--app-dir FOLDER: a folder without the page, or without the runtimes' files, is refused with the fix."""
    with pytest.raises(web.WebAppError, match=r"the web app is not at .*index\.html"):
        web.check_app_dir(tmp_path)
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "setup.sh").write_text("")
    for name in web.VENDORED[1:]:
        (tmp_path / "node_modules" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "node_modules" / name).write_text("")
    missing = tmp_path / "node_modules" / web.VENDORED[0]
    with pytest.raises(web.WebAppError, match=re.escape(f"{missing} missing): run bash {tmp_path / 'setup.sh'}")):
        web.check_app_dir(tmp_path)
    missing.parent.mkdir(parents=True, exist_ok=True)
    missing.write_text("")
    web.check_app_dir(tmp_path)
