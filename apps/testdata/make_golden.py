"""Golden files for the app cores, made by the Python runtime from real photographs, and a real bundle's contract
files.

    .venv/bin/python apps/testdata/make_golden.py BUNDLE [--photos tests/fixtures/photos] [--out apps/testdata/golden]
                                                 [--bundle-out apps/testdata/bundle]

``--bundle-out`` gets the bundle's own contract files, as ``deepsquare export`` wrote them: ``model.json``
(deepsquare-bundle/2; the checkpoint path and argv removed from its provenance), ``model.schema.json``,
``golden.png`` + ``golden.json`` (the self-check) and ``samples.json`` + ``samples/``; not the model files.

For each photo: the decoded upright RGB pixels as a lossless PNG (what an app's image decoder
hands the core), the pixels resized to the bundle's input size with Pillow's BILINEAR
(``NAME.resized.rgb``, uint8 HWC), the model input (``NAME.nhwc.f32``, float32 little-endian
NHWC, (x/255 - mean)/std), and in ``golden.json`` the TFLite model's logits (LiteRT), softmax
probabilities and top-5. The app cores must reproduce the pixels and the tensor exactly and the
top-5 from the logits; the model itself is not committed (it is generated), only its model.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

from deepsquare.runtime import images
from deepsquare.runtime.bundle import load_bundle
from deepsquare.runtime.preprocess import normalize_nchw
from deepsquare.runtime.runners import LiteRTRunner

SCHEMA = "deepsquare-photo-golden/1"  # the photos' goldens (a bundle's own golden.json is deepsquare-golden/1)


def softmax(logits: np.ndarray) -> list[float]:
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    return list(shifted / shifted.sum())


def copy_contract_files(folder: Path, meta, sidecar: dict, out: Path) -> None:
    """The bundle's model.json, schema copy, golden self-check and samples (what the apps read besides the models)."""
    if not meta.golden or not meta.samples:
        raise SystemExit(f"{folder} has no golden self-check or samples: export it with deepsquare >= bundle schema 2")
    if out.exists():
        shutil.rmtree(out)
    (out / "samples").mkdir(parents=True)
    (out / "model.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    for name in ("model.schema.json", "golden.png", meta.golden, meta.samples):
        shutil.copyfile(folder / name, out / name)
    for sample in json.loads((folder / meta.samples).read_text()):
        shutil.copyfile(folder / sample["file"], out / sample["file"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="a bundle folder with model.tflite (deepsquare-export --to tflite)")
    parser.add_argument("--photos", type=Path, default=Path("tests/fixtures/photos"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "golden")
    parser.add_argument("--bundle-out", type=Path, default=Path(__file__).parent / "bundle")
    args = parser.parse_args(argv)
    from PIL import Image

    folder, meta = load_bundle(args.bundle)
    runner = LiteRTRunner(folder / meta.formats["tflite"].file, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    size = meta.input_size
    photos = []
    for photo in sorted(args.photos.glob("*.jpg")):
        rgb = images.load_rgb(photo)
        stem = photo.stem
        rgb.save(args.out / f"{stem}.png", optimize=True)
        resized = np.asarray(rgb.resize((size, size), Image.BILINEAR))
        (args.out / f"{stem}.resized.rgb").write_bytes(resized.tobytes())
        x = normalize_nchw((resized.astype(np.float32) / 255.0)[None], meta)
        assert np.array_equal(x, normalize_nchw(images.load_image(photo, size)[None], meta))  # the runtime's path
        (args.out / f"{stem}.nhwc.f32").write_bytes(x.transpose(0, 2, 3, 1).astype("<f4").tobytes())
        logits = runner.run(x)[0]
        probs = softmax(logits)
        order = sorted(range(len(logits)), key=lambda i: (-float(logits[i]), i))[:5]
        photos.append(
            {
                "name": stem,
                "source": photo.name,
                "png": f"{stem}.png",
                "width": rgb.width,
                "height": rgb.height,
                "resized_rgb": f"{stem}.resized.rgb",
                "tensor_nhwc": f"{stem}.nhwc.f32",
                "logits": [float(v) for v in logits],
                "probabilities": probs,
                "top5": [{"index": i, "label": meta.classes[i], "probability": probs[i]} for i in order],
            }
        )
        assert math.isclose(sum(probs), 1.0, rel_tol=1e-9)
    sidecar = json.loads((folder / "model.json").read_text())
    sidecar.get("provenance", {}).pop("checkpoint", None)  # a path on the machine that made it
    sidecar.get("provenance", {}).get("trained_with", {}).pop("argv", None)
    (args.out / "model.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    copy_contract_files(folder, meta, sidecar, args.bundle_out)
    (args.out / "labels.txt").write_text("\n".join(meta.classes))
    golden = {
        "schema": SCHEMA,
        "made_by": "apps/testdata/make_golden.py (deepsquare.runtime: Pillow BILINEAR, LiteRT)",
        "bundle": {
            "arch": meta.arch,
            "variant": meta.variant,
            "input_size": size,
            "mean": meta.mean,
            "std": meta.std,
            "classes": meta.classes,
            "layout": "NHWC",
        },
        "photos": photos,
    }
    (args.out / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"golden files for {len(photos)} photos: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
