"""Type-check the app's Kotlin sources without the Android SDK, against hand-written API stubs.

    .venv/bin/python apps/android/tools/typecheck_app.py [--core-classes apps/android/core/build/kotlinc/classes]

The Gradle build cannot run where this project is tested (no Android SDK, no Gradle plugin, no Google Maven). This
compiles app/src/main/kotlin (with the core's sources, or its compiled classes) with kotlinc against small Java/Kotlin
stubs of the Android, AndroidX, CameraX, Material and LiteRT 2.x (CompiledModel API) classes the app uses, plus an R
class generated from the XML resources, and Debian's Gson jar (the core's one dependency). It catches Kotlin errors in
the app code (types, nullability, missing imports, R ids that do not exist, calls into the core); it does NOT prove
that the real libraries have these exact signatures: the stubs (tools/api-stubs) are written from their sources or
documentation, only as far as the app uses them (the LiteRT ones from the LiteRT repository's Kotlin sources of
August 2026; the build pins 2.3.0). With --core-classes (what core/run-tests.sh compiled) the core is not compiled
again, which halves the time. Exit code: kotlinc's.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ANDROID = Path(__file__).resolve().parents[1]
KOTLINC = ANDROID / ".toolchain" / "lib" / "node_modules" / "kotlin-compiler" / "bin" / "kotlinc"
RES = ANDROID / "app" / "src" / "main" / "res"
A = "{http://schemas.android.com/apk/res/android}"

STUBS = Path(__file__).resolve().parent / "api-stubs"  # java/ and kotlin/; see its README.md
GSON = Path("/usr/share/java/gson.jar")


def r_class() -> str:
    """R.id / R.layout / R.string from the resources, as aapt would make them."""
    ids, layouts = set(), set()
    for path in RES.glob("layout/*.xml"):
        layouts.add(path.stem)
        ids |= {e.get(f"{A}id").split("/")[-1] for e in ET.parse(path).getroot().iter() if e.get(f"{A}id")}
    strings = {e.get("name") for e in ET.parse(RES / "values" / "strings.xml").getroot()}

    def block(name: str, items: set[str]) -> str:
        rows = "".join(f"    public static final int {item} = {n};\n" for n, item in enumerate(sorted(items), 1))
        return f"  public static final class {name} {{\n{rows}  }}\n"

    blocks = block("id", ids) + block("layout", layouts) + block("string", strings)
    return f"package ai.deepsquare.android;\npublic final class R {{\n{blocks}}}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core-classes", type=Path, help="the core's compiled classes, instead of its sources")
    args = parser.parse_args(argv)
    if not KOTLINC.is_file() or shutil.which("javac") is None or not GSON.is_file():
        print("typecheck_app: kotlinc, javac or Gson missing: bash apps/android/setup.sh", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        r_java = root / "src" / "ai" / "deepsquare" / "android" / "R.java"
        r_java.parent.mkdir(parents=True)
        r_java.write_text(r_class())
        java = [str(p) for p in sorted((STUBS / "java").rglob("*.java"))] + [str(r_java)]
        subprocess.run(["javac", "-nowarn", "-d", str(root / "stubs"), *java], check=True)
        sources = [STUBS / "kotlin", ANDROID / "app" / "src" / "main" / "kotlin"]
        classpath = [root / "stubs", GSON]  # the core decodes JSON with Gson (Debian's libgoogle-gson-java)
        if args.core_classes:
            classpath.append(args.core_classes)
        else:
            sources.append(ANDROID / "core" / "src" / "main" / "kotlin")
        cmd = [
            str(KOTLINC),
            "-nowarn",
            "-jvm-target",
            "17",
            "-cp",
            ":".join(map(str, classpath)),
            "-d",
            str(root / "out"),
            *map(str, sources),
        ]
        done = subprocess.run(cmd)
        print(f"typecheck_app: {'OK' if done.returncode == 0 else 'FAILED'} (app + core against the API stubs)")
        return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
