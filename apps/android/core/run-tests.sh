#!/usr/bin/env bash
# Compile the pure-Kotlin core (main + test sources, one kotlinc call) and run its JUnit 4 tests
# on the JVM; no Gradle, no Android SDK. Exit code = the test result.
#
#   apps/android/core/run-tests.sh [--golden DIR] [--tflite FILE] [--record-out FILE] [--metadata-out FILE]
#
# The same settings may come from the environment: GOLDEN_DIR, TFLITE_FILE, RECORD_OUT, METADATA_OUT.
# KOTLINC, JUNIT_JAR and HAMCREST_JAR override where the tools are (apps/android/setup.sh installs them).
set -euo pipefail
CORE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ANDROID="$(dirname "$CORE")"
REPO="$(cd "$ANDROID/../.." && pwd)"

GOLDEN_DIR="${GOLDEN_DIR:-$REPO/apps/testdata/golden}"
TFLITE_FILE="${TFLITE_FILE:-}"
RECORD_OUT="${RECORD_OUT:-}"
METADATA_OUT="${METADATA_OUT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --golden) GOLDEN_DIR="$2"; shift 2 ;;
    --tflite) TFLITE_FILE="$2"; shift 2 ;;
    --record-out) RECORD_OUT="$2"; shift 2 ;;
    --metadata-out) METADATA_OUT="$2"; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "run-tests.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

KOTLIN_HOME="$ANDROID/.toolchain/lib/node_modules/kotlin-compiler"
KOTLINC="${KOTLINC:-$KOTLIN_HOME/bin/kotlinc}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
HAMCREST_JAR="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
for tool in "$KOTLINC" "$JUNIT_JAR" "$HAMCREST_JAR"; do
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
  echo "run-tests.sh: kotlinc (main + test) -> $CLASSES"
  start=$(date +%s)
  "$KOTLINC" -nowarn -jvm-target 17 -cp "$JUNIT_JAR:$HAMCREST_JAR" -d "$CLASSES" \
    "$CORE/src/main/kotlin" "$CORE/src/test/kotlin"
  echo "run-tests.sh: compiled in $(( $(date +%s) - start )) s"
  echo "$digest" > "$STAMP"
fi

# Test classes: top-level *Test classes under src/test/kotlin.
tests=()
while IFS= read -r f; do
  rel="${f#"$CLASSES"/}"
  tests+=("$(echo "${rel%.class}" | tr / .)")
done < <(find "$CLASSES" -name '*Test.class' ! -name '*$*' | sort)
[ "${#tests[@]}" -gt 0 ] || { echo "run-tests.sh: no test classes compiled" >&2; exit 1; }

exec java -Dgolden.dir="$GOLDEN_DIR" -Dtflite.file="$TFLITE_FILE" -Drecord.out="$RECORD_OUT" \
  -Dmetadata.out="$METADATA_OUT" -cp "$CLASSES:$STDLIB:$JUNIT_JAR:$HAMCREST_JAR" \
  org.junit.runner.JUnitCore "${tests[@]}"
