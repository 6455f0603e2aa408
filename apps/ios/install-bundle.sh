#!/usr/bin/env bash
# Copy an exported bundle's Core ML model (and its model.json) into the demo app:
#
#   deepsquare-export CKPT --to coreml --out BUNDLE     # on macOS or Linux (coremltools)
#   apps/ios/install-bundle.sh BUNDLE
#   cd apps/ios && xcodegen                             # re-run: the project then lists the model
#
# Checks that BUNDLE is a deepsquare bundle (model.json, schema deepsquare-bundle/2 or /1) with a
# model.mlpackage that looks like a Core ML package; copies golden.json and golden.png (the self-check
# the app runs when it starts) when model.json names them; replaces any bundle installed before.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/DeepSquareDemo/Model"

die() {
    echo "install-bundle.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: install-bundle.sh BUNDLE   (a folder written by deepsquare-export --to coreml)"
bundle="${1%/}"
[ -d "$bundle" ] || die "$bundle is not a folder"
[ -f "$bundle/model.json" ] || die "$bundle/model.json is missing: is $bundle a deepsquare-export output folder?"
grep -Eq '"schema": *"deepsquare-bundle/[12]"' "$bundle/model.json" \
    || die "$bundle/model.json is not a deepsquare-bundle/1 or /2 model.json; re-export the bundle"
golden=()
if grep -Eq '"golden": *"golden.json"' "$bundle/model.json"; then
    for name in golden.json golden.png; do
        [ -f "$bundle/$name" ] || die "model.json names golden.json but $bundle/$name is missing: copy the whole bundle"
    done
    golden=(golden.json golden.png)
fi
package="$bundle/model.mlpackage"
[ -d "$package" ] || die "$package is missing: export with deepsquare-export CKPT --to coreml --out $bundle"
[ -f "$package/Manifest.json" ] || die "$package has no Manifest.json: not a Core ML package"
find "$package/Data" -name '*.mlmodel' -print -quit 2>/dev/null | grep -q . \
    || die "$package has no Data/**/model.mlmodel: not a Core ML package"

if command -v python3 >/dev/null 2>&1; then
    # the app reads these fields; catch a broken sidecar here rather than on the phone
    python3 - "$bundle/model.json" <<'PY' || die "$bundle/model.json does not check out (see above)"
import json, sys
meta = json.load(open(sys.argv[1], encoding="utf-8"))
problems = []
if not isinstance(meta.get("classes"), list) or not meta["classes"]:
    problems.append("classes must be a non-empty list")
size = meta.get("input_size")
if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
    problems.append(f"input_size must be a whole number in 8..4096, got {size!r}")
std = meta.get("std")
if not isinstance(std, list) or len(std) != 3 or any(not isinstance(v, (int, float)) or v <= 0 for v in std):
    problems.append(f"std must be 3 positive numbers, got {std!r}")
if "coreml" not in meta.get("formats", {}):
    print("note: model.json lists no coreml format; was the bundle exported with --to coreml?", file=sys.stderr)
for p in problems:
    print(f"model.json: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
fi

mkdir -p "$dest"
rm -rf "$dest/model.mlpackage"
cp -R "$package" "$dest/model.mlpackage"
cp "$bundle/model.json" "$dest/model.json"
rm -f "$dest/golden.json" "$dest/golden.png" # a stale golden file would fail the self-check
for name in "${golden[@]}"; do
    cp "$bundle/$name" "$dest/$name"
done
echo "installed $package, model.json ${golden[*]} into $dest"
echo "next: cd $here && xcodegen, then build DeepSquareDemo in Xcode"
