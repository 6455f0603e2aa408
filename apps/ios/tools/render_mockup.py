"""Render docs/apps/ios-mockup.png: the demo app's two screens drawn from the SwiftUI layout and the golden data.

    .venv/bin/python apps/ios/tools/render_mockup.py [--photo astronaut] [--out docs/apps/ios-mockup.png]

A MOCK-UP, not a screenshot: the app was not built or run here (no Swift toolchain on Linux). The
photo, its top-5 and the bundle fields come from apps/testdata/golden (golden.json, model.json);
the latency table has no numbers, only "run on device".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "apps" / "testdata" / "golden"
OUT = ROOT / "docs" / "apps" / "ios-mockup.png"

PHONE_W, PHONE_H = 760, 1560  # the body; the screen is inset by BEZEL
BEZEL = 26
MARGIN = 60
BANNER_H = 120
BACKGROUND = (236, 238, 242)
SCREEN = (242, 242, 247)  # iOS grouped background
CARD = (255, 255, 255)
INK = (28, 28, 30)
GREY = (120, 120, 128)
ACCENT = (0, 122, 255)
WARNING = (196, 32, 32)


def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono" if mono else "DejaVuSans"
    name += "-Bold" if bold else ""
    for folder in ("/usr/share/fonts/truetype/dejavu", "/Library/Fonts", "/System/Library/Fonts/Supplemental"):
        path = Path(folder) / f"{name}.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


class Screen:
    """A phone screen laid out top to bottom like a SwiftUI List with inset grouped sections."""

    def __init__(self, canvas: Image.Image, left: int, top: int, title: str, back: str | None = None) -> None:
        self.canvas, self.draw = canvas, ImageDraw.Draw(canvas)
        self.x0, self.y0 = left + BEZEL, top + BEZEL
        self.width, self.height = PHONE_W - 2 * BEZEL, PHONE_H - 2 * BEZEL
        d = self.draw
        d.rounded_rectangle((left, top, left + PHONE_W, top + PHONE_H), radius=110, fill=(20, 20, 22))
        d.rounded_rectangle((self.x0, self.y0, self.x0 + self.width, self.y0 + self.height), radius=88, fill=SCREEN)
        island_w = 220
        cx = self.x0 + self.width // 2
        d.rounded_rectangle(
            (cx - island_w // 2, self.y0 + 22, cx + island_w // 2, self.y0 + 82), radius=30, fill=(0, 0, 0)
        )
        d.text((self.x0 + 70, self.y0 + 36), "9:41", font=font(30, bold=True), fill=INK)
        y = self.y0 + 120
        if back:
            d.text((self.x0 + 34, y), "< " + back, font=font(30), fill=ACCENT)
            y += 50
        d.text((self.x0 + 40, y), title, font=font(58, bold=True), fill=INK)
        self.y = y + 100
        self.pad = 34

    def header(self, text: str) -> None:
        self.draw.text((self.x0 + self.pad + 22, self.y), text.upper(), font=font(24), fill=GREY)
        self.y += 38

    def card(self, height: int) -> tuple[int, int, int, int]:
        box = (self.x0 + self.pad, self.y, self.x0 + self.width - self.pad, self.y + height)
        self.draw.rounded_rectangle(box, radius=22, fill=CARD)
        self.y += height + 34
        return box

    def rows(self, pairs: list[tuple[str, str]]) -> None:
        row_h = 52
        box = self.card(row_h * len(pairs))
        for i, (name, value) in enumerate(pairs):
            top = box[1] + i * row_h
            if i:
                self.draw.line((box[0] + 24, top, box[2], top), fill=(220, 220, 225), width=2)
            self.draw.text((box[0] + 24, top + 11), name, font=font(28), fill=INK)
            self.draw.text((box[2] - 24, top + 11), value, font=font(28), fill=GREY, anchor="ra")

    def button(self, box: tuple[int, int, int, int], label: str) -> None:
        self.draw.rounded_rectangle(box, radius=16, fill=(226, 236, 250))
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        self.draw.text((cx, cy), label, font=font(28), fill=ACCENT, anchor="mm")

    def footnote(self, text: str) -> None:
        self.draw.multiline_text((self.x0 + self.pad + 22, self.y - 22), text, font=font(22), fill=GREY, spacing=6)
        self.y += 24 * (text.count("\n") + 1)


def main_screen(canvas: Image.Image, left: int, top: int, golden: dict, meta: dict, photo: dict) -> None:
    s = Screen(canvas, left, top, "DeepSquare")
    s.header("Model")
    size = meta["input_size"]
    s.rows(
        [
            ("Architecture", meta["arch"]),
            ("Variant", meta["variant"]),
            ("Input", f"{size} x {size} RGB"),
            ("Classes", str(len(meta["classes"]))),
            ("Labels from", "model metadata"),
        ]
    )
    s.header("Photo")
    box = s.card(390)
    image = Image.open(GOLDEN / photo["png"]).convert("RGB")
    image.thumbnail((box[2] - box[0] - 48, 250))
    canvas.paste(image, ((box[0] + box[2] - image.width) // 2, box[1] + 18))
    half = (box[2] - box[0]) // 2
    s.button((box[0] + 24, box[3] - 110, box[0] + half - 12, box[3] - 50), "Photos")
    s.button((box[0] + half + 12, box[3] - 110, box[2] - 24, box[3] - 50), "Camera")
    s.draw.text(
        (box[0] + 24, box[3] - 40),
        f"{photo['name']}.png ({photo['width']}x{photo['height']})",
        font=font(20),
        fill=GREY,
    )
    s.header("Top 5")
    row_h = 64
    box = s.card(row_h * 5 + 8)
    bar_w = box[2] - box[0] - 48
    for i, entry in enumerate(photo["top5"]):
        y = box[1] + i * row_h
        s.draw.text((box[0] + 24, y + 8), entry["label"], font=font(26, mono=True), fill=INK)
        s.draw.text((box[2] - 24, y + 8), f"{entry['probability'] * 100:.1f}%", font=font(26), fill=INK, anchor="ra")
        s.draw.rounded_rectangle((box[0] + 24, y + 44, box[0] + 24 + bar_w, y + 54), radius=5, fill=(225, 225, 230))
        filled = max(10, round(bar_w * entry["probability"]))
        s.draw.rounded_rectangle((box[0] + 24, y + 44, box[0] + 24 + filled, y + 54), radius=5, fill=ACCENT)
    s.header("Latency")
    box = s.card(60)
    s.draw.text((box[0] + 24, box[1] + 14), "Compare compute units", font=font(28), fill=ACCENT)
    s.draw.text((box[2] - 24, box[1] + 14), ">", font=font(28), fill=GREY, anchor="ra")


def latency_screen(canvas: Image.Image, left: int, top: int, meta: dict) -> None:
    s = Screen(canvas, left, top, "Latency", back="DeepSquare")
    s.header("Plan")
    box = s.card(330)
    d = s.draw
    d.text((box[0] + 24, box[1] + 18), "Timed rounds: 30", font=font(28), fill=INK)
    d.text((box[0] + 24, box[1] + 74), "Warm-up rounds per block: 5", font=font(28), fill=INK)
    d.multiline_text(
        (box[0] + 24, box[1] + 130),
        "cpuOnly, cpuAndGPU and all are timed run by run,\ninterleaved, the order rotated every round;"
        "\nthe rounds are split into 3 blocks, each loading\nthe three models anew and warming them up.",
        font=font(21),
        fill=GREY,
        spacing=6,
    )
    s.button((box[0] + 24, box[3] - 76, box[2] - 24, box[3] - 20), "Time the model")
    s.header("Latency, ms (ratio to cpuOnly, 95% interval)")
    columns = ("units", "p50", "p90", "ratio")
    xs = (0, 180, 300, 420)
    row_h = 58
    box = s.card(row_h * 4 + 70)
    for j, name in enumerate(columns):
        d.text((box[0] + 24 + xs[j], box[1] + 18), name, font=font(26, bold=True), fill=INK)
    for i, unit in enumerate(("cpuOnly", "cpuAndGPU", "all")):
        y = box[1] + 18 + (i + 1) * row_h
        d.line((box[0] + 24, y - 12, box[2] - 24, y - 12), fill=(220, 220, 225), width=2)
        d.text((box[0] + 24, y), unit, font=font(25), fill=INK)
        for j in (1, 2):
            d.text((box[0] + 24 + xs[j], y), "--", font=font(25), fill=GREY)
        d.text((box[0] + 24 + xs[3], y), "1 (baseline)" if i == 0 else "--", font=font(25), fill=GREY)
    s.draw.text(
        ((box[0] + box[2]) // 2, box[3] - 14), "run on device", font=font(30, bold=True), fill=WARNING, anchor="md"
    )
    s.y += 10
    s.header("Records")
    box = s.card(170)
    d.text((box[0] + 24, box[1] + 18), "Share records JSON", font=font(28), fill=ACCENT)
    d.multiline_text(
        (box[0] + 24, box[1] + 66),
        f"Also in Files > On My iPhone > DeepSquare:\ndeepsquare-records-{meta['arch']}-....json\n"
        "deepsquare bench --add-records FILE",
        font=font(21),
        fill=GREY,
        spacing=6,
    )


def render(photo_name: str, out: Path) -> Path:
    golden = json.loads((GOLDEN / "golden.json").read_text())
    meta = json.loads((GOLDEN / "model.json").read_text())
    photos = {p["name"]: p for p in golden["photos"]}
    if photo_name not in photos:
        raise SystemExit(f"no golden photo {photo_name!r}; have {', '.join(sorted(photos))}")
    width = 2 * PHONE_W + 3 * MARGIN
    height = PHONE_H + 2 * MARGIN + BANNER_H
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    d = ImageDraw.Draw(canvas)
    d.rectangle((0, 0, width, BANNER_H), fill=WARNING)
    d.text(
        (width // 2, 40),
        "MOCK-UP rendered from the layout, not a screenshot",
        font=font(44, bold=True),
        fill=(255, 255, 255),
        anchor="mm",
    )
    d.text(
        (width // 2, 90),
        "apps/ios DeepSquareDemo (SwiftUI), drawn by apps/ios/tools/render_mockup.py from "
        "apps/testdata/golden; the app was not built or run",
        font=font(24),
        fill=(255, 235, 235),
        anchor="mm",
    )
    top = BANNER_H + MARGIN
    main_screen(canvas, MARGIN, top, golden, meta, photos[photo_name])
    latency_screen(canvas, 2 * MARGIN + PHONE_W, top, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="astronaut", help="a golden photo's name (default: astronaut)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    print(render(args.photo, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
