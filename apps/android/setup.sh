#!/usr/bin/env bash
# Toolchain for compiling and testing the pure-Kotlin core here (no Android SDK, no Gradle):
#   - kotlinc from the npm package kotlin-compiler, installed into apps/android/.toolchain
#   - a JDK, JUnit 4 (+ hamcrest) and Gson (libgoogle-gson-java) from Debian, when run as root and they are missing.
# Idempotent. What it cannot install is printed, not fatal.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLCHAIN="$HERE/.toolchain"
KOTLIN_VERSION="2.4.20"
missing=()

if ! command -v javac >/dev/null 2>&1 || [ ! -f /usr/share/java/junit4.jar ] || [ ! -f /usr/share/java/gson.jar ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    pkgs=()
    command -v javac >/dev/null 2>&1 || pkgs+=(default-jdk-headless)
    [ -f /usr/share/java/junit4.jar ] || pkgs+=(junit4)
    [ -f /usr/share/java/gson.jar ] || pkgs+=(libgoogle-gson-java)
    echo "setup.sh: apt-get install ${pkgs[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}") \
      || echo "setup.sh: could not install ${pkgs[*]} with apt-get"
  fi
  command -v javac >/dev/null 2>&1 || missing+=("JDK (javac): apt-get install default-jdk-headless")
  [ -f /usr/share/java/junit4.jar ] || missing+=("JUnit 4 (/usr/share/java/junit4.jar): apt-get install junit4")
  [ -f /usr/share/java/gson.jar ] || missing+=("Gson (/usr/share/java/gson.jar): apt-get install libgoogle-gson-java")
fi
[ -f /usr/share/java/hamcrest-core.jar ] || [ ! -f /usr/share/java/junit4.jar ] \
  || missing+=("hamcrest (/usr/share/java/hamcrest-core.jar): apt-get install libhamcrest-java")

kotlinc_path() {
  # The npm package ships the full compiler distribution; its JVM launcher is bin/kotlinc.
  local base="$TOOLCHAIN/lib/node_modules/kotlin-compiler"
  for candidate in "$base/bin/kotlinc" "$base/kotlinc/bin/kotlinc"; do
    [ -f "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

installed_version="$(node -p "require('$TOOLCHAIN/lib/node_modules/kotlin-compiler/package.json').version" 2>/dev/null || true)"
if [ "$installed_version" != "$KOTLIN_VERSION" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup.sh: npm install kotlin-compiler@$KOTLIN_VERSION into $TOOLCHAIN"
    mkdir -p "$TOOLCHAIN"
    npm install --global --prefix "$TOOLCHAIN" --no-audit --no-fund "kotlin-compiler@$KOTLIN_VERSION" >/dev/null \
      || echo "setup.sh: npm install kotlin-compiler@$KOTLIN_VERSION failed"
  else
    missing+=("npm (to install kotlin-compiler@$KOTLIN_VERSION)")
  fi
fi
if KOTLINC="$(kotlinc_path)"; then
  chmod +x "$KOTLINC" 2>/dev/null || true
  echo "setup.sh: kotlinc at $KOTLINC"
else
  missing+=("kotlinc (npm kotlin-compiler@$KOTLIN_VERSION into $TOOLCHAIN)")
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: NOT installed:"
  printf '  - %s\n' "${missing[@]}"
else
  echo "setup.sh: toolchain ready (kotlinc, JDK, JUnit 4, Gson)"
fi
exit 0
