#!/usr/bin/env bash
# Compile the pure-Kotlin core (main + test sources, one kotlinc call) and run its JUnit 4 tests
# on the JVM; no Gradle, no Android SDK, no LiteRT (the JVM cannot run it). Exit code = the test result.
#
#   apps/android/core/run-tests.sh [--bundle DIR] [--record-out FILE] [--report-out DIR]
#   apps/android/core/run-tests.sh --self-check DIR OUTPUTS.json    # compare a runtime's outputs with golden.json
#
# --bundle: an exported bundle (model.json, golden.json, golden.png) for RealBundleTest; --report-out: where
# that test writes what the core read and the model input it made from golden.png (for tests/test_android_core.py).
# The same settings may come from the environment: BUNDLE_DIR, RECORD_OUT, REPORT_OUT. KOTLINC, JUNIT_JAR,
# HAMCREST_JAR and GSON_JAR override where the tools are (apps/android/setup.sh installs them).
set -euo pipefail
CORE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ANDROID="$(dirname "$CORE")"

BUNDLE_DIR="${BUNDLE_DIR:-}"
RECORD_OUT="${RECORD_OUT:-}"
REPORT_OUT="${REPORT_OUT:-}"
SELF_CHECK=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE_DIR="$2"; shift 2 ;;
    --record-out) RECORD_OUT="$2"; shift 2 ;;
    --report-out) REPORT_OUT="$2"; shift 2 ;;
    --self-check) SELF_CHECK=("$2" "$3"); shift 3 ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "run-tests.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

KOTLIN_HOME="$ANDROID/.toolchain/lib/node_modules/kotlin-compiler"
KOTLINC="${KOTLINC:-$KOTLIN_HOME/bin/kotlinc}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
HAMCREST_JAR="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
GSON_JAR="${GSON_JAR:-/usr/share/java/gson.jar}"
for tool in "$KOTLINC" "$JUNIT_JAR" "$HAMCREST_JAR" "$GSON_JAR"; do
  if [ ! -e "$tool" ]; then
    echo "run-tests.sh: $tool is missing; run apps/android/setup.sh" >&2
    exit 3
  fi
done
command -v java >/dev/null || { echo "run-tests.sh: java is missing; run apps/android/setup.sh" >&2; exit 3; }
STDLIB="$(dirname "$(dirname "$(readlink -f "$KOTLINC")")")/lib/kotlin-stdlib.jar"

BUILD="${CORE_BUILD_DIR:-$CORE/build/kotlinc}"
CLASSES="$BUILD/classes"
STAMP="$BUILD/sources.sha256"
mkdir -p "$BUILD"
# Recompile only when a source (or this script) changed.
digest="$(find "$CORE/src" -name '*.kt' -type f -print0 | sort -z | xargs -0 sha256sum | cat - "$0" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$digest" ] || [ ! -d "$CLASSES" ]; then
  rm -rf "$CLASSES"
  echo "run-tests.sh: kotlinc (main + test) -> $CLASSES" >&2
  start=$(date +%s)
  "$KOTLINC" -nowarn -jvm-target 17 -cp "$GSON_JAR:$JUNIT_JAR:$HAMCREST_JAR" -d "$CLASSES" \
    "$CORE/src/main/kotlin" "$CORE/src/test/kotlin"
  echo "run-tests.sh: compiled in $(( $(date +%s) - start )) s" >&2
  echo "$digest" > "$STAMP"
fi
CP="$CLASSES:$STDLIB:$GSON_JAR:$JUNIT_JAR:$HAMCREST_JAR"

if [ "${#SELF_CHECK[@]}" -gt 0 ]; then
  exec java -cp "$CP" ai.deepsquare.core.SelfCheckMain "${SELF_CHECK[@]}"
fi

# Test classes: top-level *Test classes under src/test/kotlin.
tests=()
while IFS= read -r f; do
  rel="${f#"$CLASSES"/}"
  tests+=("$(echo "${rel%.class}" | tr / .)")
done < <(find "$CLASSES" -name '*Test.class' ! -name '*$*' | sort)
[ "${#tests[@]}" -gt 0 ] || { echo "run-tests.sh: no test classes compiled" >&2; exit 1; }

exec java -Dbundle.dir="$BUNDLE_DIR" -Drecord.out="$RECORD_OUT" -Dreport.out="$REPORT_OUT" \
  -Dtestdata.bundle="$(cd "$ANDROID/../testdata" && pwd)/bundle" \
  -cp "$CP" org.junit.runner.JUnitCore "${tests[@]}"
