"""The report's first screen: a few held-out images of the bundle's own data (``samples.json``, written at export),
each with its true label and the answer of the exported file, so that a reader sees what the model is for before
the tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepsquare.runtime.bundle import BundleError, load_bundle
from deepsquare.runtime.formats import FORMATS


def sample_answers(bundle: Path) -> dict[str, Any]:
    """``{"bundle", "runtime", "rows": [{"file", "label", "top1", "probability"}]}`` of ``bundle``'s samples, answered
    by its first format that runs here (what ``deepsquare predict`` would run); ``{"error": ...}`` when it cannot."""
    from deepsquare.runtime.predictor import load

    try:
        folder, meta = load_bundle(bundle)
        if not meta.samples:
            return {"bundle": str(bundle), "error": "the bundle has no samples.json"}
        samples = json.loads((folder / meta.samples).read_text())
        predictor = load(folder)
        rows = []
        for sample in samples:
            best = predictor.predict(folder / sample["file"], top=1)[0]
            rows.append({**sample, "top1": best.label, "probability": round(best.probability, 4)})
    except (BundleError, OSError, ValueError) as exc:
        return {"bundle": str(bundle), "error": str(exc)}
    return {"bundle": str(bundle), "runtime": FORMATS[predictor.format].runtime, "rows": rows}


def samples_markdown(answers: dict[str, Any], report_dir: Path) -> list[str]:
    """A table of the images (linked relative to the report), true labels and answers."""
    bundle = Path(answers["bundle"])
    name = bundle.parent.name
    if "error" in answers:
        return [f"Held-out samples of {name}: not shown ({answers['error']}).", ""]
    right = sum(r["top1"] == r["label"] for r in answers["rows"])
    lines = [
        f"Held-out images of the data (the bundle's `samples/`, also the web app's first screen), answered by the "
        f"exported {name} file in {answers['runtime']}: {right} of {len(answers['rows'])} right.",
        "",
        "| image | true label | answer (probability) |",
        "|---|---|---|",
    ]
    for row in answers["rows"]:
        link = (bundle / row["file"]).relative_to(report_dir).as_posix() if bundle.is_relative_to(report_dir) else ""
        image = f"![{row['label']}]({link})" if link else row["file"]
        mark = "" if row["top1"] == row["label"] else " (wrong)"
        lines.append(f"| {image} | {row['label']} | {row['top1']} ({row['probability']:.2f}){mark} |")
    return [*lines, ""]
