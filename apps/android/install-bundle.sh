#!/usr/bin/env bash
# Copy an exported bundle into the app's assets:
#   apps/android/install-bundle.sh BUNDLE      (BUNDLE = a deepsquare-export --to tflite --out folder)
# model.tflite is required and must carry the deepsquare metadata; model.json is copied when present.
# Then rebuild the app (the assets are packaged into the APK).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="$HERE/app/src/main/assets"

fail() { echo "install-bundle.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || fail "usage: install-bundle.sh BUNDLE (a folder made by deepsquare-export --to tflite)"
BUNDLE="$1"
[ -d "$BUNDLE" ] || fail "$BUNDLE is not a folder (expected a bundle with model.tflite)"
MODEL="$BUNDLE/model.tflite"
[ -f "$MODEL" ] || fail "$BUNDLE has no model.tflite: export with deepsquare-export CKPT --to tflite --out $BUNDLE"
ident="$(dd if="$MODEL" bs=1 skip=4 count=4 2>/dev/null || true)"
[ "$ident" = "TFL3" ] || fail "$MODEL is not a TFLite flatbuffer (no 'TFL3' identifier at bytes 4..8)"
grep -qa "deepsquare_bundle" "$MODEL" \
  || fail "$MODEL has no deepsquare_bundle metadata: re-export it with deepsquare-export --to tflite"
SIDECAR="$BUNDLE/model.json"
if [ -f "$SIDECAR" ]; then
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$SIDECAR" <<'PY' || fail "$SIDECAR is not a deepsquare-bundle/1 model.json; re-export the bundle"
import json, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
assert isinstance(data, dict) and data.get("schema") == "deepsquare-bundle/1"
assert "tflite" in data.get("formats", {}), "the bundle has no tflite format"
PY
  fi
fi

mkdir -p "$ASSETS"
cp "$MODEL" "$ASSETS/model.tflite"
if [ -f "$SIDECAR" ]; then
  cp "$SIDECAR" "$ASSETS/model.json"
else
  rm -f "$ASSETS/model.json" # a stale sidecar from another bundle would be refused by the app
fi
echo "install-bundle.sh: copied $(ls "$ASSETS" | grep -E '^model\.(tflite|json)$' | tr '\n' ' ')to $ASSETS; rebuild the app"
