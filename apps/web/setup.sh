#!/usr/bin/env bash
# Installs the web app's packages (pinned by package-lock.json) and, where this user may, Debian's
# Chromium for the headless tests and `deepsquare serve --headless-bench`. Idempotent; .ci/setup runs it.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  echo "apps/web: npm not found: install Node.js 18+ to use the web app (the Python side works without it)" >&2
  exit 0
fi
stamp=node_modules/.deepsquare-installed
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "apps/web: npm ci (onnxruntime-web, @litertjs/core, ajv-dist, playwright-core) ..."
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "apps/web: apt-get install chromium (headless browser tests) ..."
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
      || echo "apps/web: could not install chromium: browser tests will be skipped" >&2
  else
    echo "apps/web: no chromium here (sudo apt-get install chromium): browser tests will be skipped" >&2
  fi
fi
