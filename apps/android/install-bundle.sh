#!/usr/bin/env bash
# Copy an exported bundle into the app's assets:
#   apps/android/install-bundle.sh BUNDLE      (BUNDLE = a `deepsquare export CKPT --to tflite --input uint8` folder)
# model.tflite and model.json are required; golden.json and golden.png (the self-check the app runs when it
# loads the bundle) are copied when model.json names them. Then rebuild the app (the assets go into the APK).
# The app itself checks model.json field by field when it starts; this script catches the obvious mistakes early.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="$HERE/app/src/main/assets"

fail() { echo "install-bundle.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || fail "usage: install-bundle.sh BUNDLE (a folder made by deepsquare export --to tflite)"
BUNDLE="${1%/}"
[ -d "$BUNDLE" ] || fail "$BUNDLE is not a folder (expected a bundle with model.tflite and model.json)"
MODEL="$BUNDLE/model.tflite"
[ -f "$MODEL" ] || fail "$BUNDLE has no model.tflite: export with deepsquare export CKPT --to tflite --input uint8 --out $BUNDLE"
ident="$(dd if="$MODEL" bs=1 skip=4 count=4 2>/dev/null || true)"
[ "$ident" = "TFL3" ] || fail "$MODEL is not a TFLite flatbuffer (no 'TFL3' identifier at bytes 4..8)"
SIDECAR="$BUNDLE/model.json"
[ -f "$SIDECAR" ] || fail "$BUNDLE has no model.json: the app reads the labels, input size and input kind from it"
grep -Eq '"schema": *"deepsquare-bundle/[12]"' "$SIDECAR" \
  || fail "$SIDECAR is not a deepsquare-bundle/1 or /2 model.json; re-export the bundle"
grep -q '"tflite"' "$SIDECAR" || fail "$SIDECAR lists no tflite model; export with --to tflite"
files=(model.tflite model.json)
if grep -Eq '"golden": *"golden.json"' "$SIDECAR"; then
  for name in golden.json golden.png; do
    [ -f "$BUNDLE/$name" ] || fail "model.json names golden.json but $BUNDLE/$name is missing: copy the whole bundle"
  done
  files+=(golden.json golden.png)
fi

mkdir -p "$ASSETS"
# Files of a bundle installed before are removed first: a stale golden file would fail the self-check.
rm -f "$ASSETS"/model.tflite "$ASSETS"/model.json "$ASSETS"/golden.json "$ASSETS"/golden.png
for name in "${files[@]}"; do cp "$BUNDLE/$name" "$ASSETS/$name"; done
echo "install-bundle.sh: copied ${files[*]} to $ASSETS; rebuild the app"
