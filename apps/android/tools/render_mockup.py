"""Render docs/apps/android-mockup.png: the main screen's layout (activity_main.xml) drawn with Pillow from the
golden top-5 of one photo. It is a MOCK-UP, not a screenshot: the app was not built or run here (no Android SDK).

    .venv/bin/python apps/android/tools/render_mockup.py [--photo chelsea] [--out docs/apps/android-mockup.png]

The photo, labels and probabilities are real (apps/testdata/golden: the Python runtime's LiteRT logits on that
photo); no latency is shown because none was measured on a phone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "apps" / "testdata" / "golden"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

INK = (27, 31, 36)
MUTED = (107, 114, 128)
ACCENT = (47, 111, 235)
SURFACE = (246, 247, 249)
TRACK = (222, 226, 232)
WARN = (190, 30, 45)


def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono.ttf" if mono else ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(str(FONT_DIR / name), size)
    except OSError:
        return ImageFont.load_default(size=size)


def button(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, outlined: bool = False) -> None:
    if outlined:
        draw.rounded_rectangle(box, radius=22, outline=ACCENT, width=3, fill=SURFACE)
    else:
        draw.rounded_rectangle(box, radius=22, fill=ACCENT)
    f = font(22, bold=True)
    w = draw.textlength(text, font=f)
    draw.text(
        ((box[0] + box[2] - w) / 2, (box[1] + box[3]) / 2 - 13), text, font=f, fill=ACCENT if outlined else "white"
    )


def render(photo_name: str, out: Path) -> Path:
    golden = json.loads((GOLDEN / "golden.json").read_text())
    photo = next(p for p in golden["photos"] if p["name"] == photo_name)
    bundle = golden["bundle"]

    width, height = 640, 1300
    img = Image.new("RGB", (width + 160, height + 150), (236, 238, 242))
    draw = ImageDraw.Draw(img)
    # The phone: body, screen, camera hole.
    ox, oy = 80, 70
    draw.rounded_rectangle((ox, oy, ox + width, oy + height), radius=70, fill=(24, 24, 28))
    sx0, sy0, sx1, sy1 = ox + 22, oy + 22, ox + width - 22, oy + height - 22
    draw.rounded_rectangle((sx0, sy0, sx1, sy1), radius=52, fill=SURFACE)
    draw.ellipse((ox + width / 2 - 10, sy0 + 14, ox + width / 2 + 10, sy0 + 34), fill=(24, 24, 28))
    # App bar.
    draw.rectangle((sx0, sy0 + 50, sx1, sy0 + 130), fill=ACCENT)
    draw.text((sx0 + 28, sy0 + 70), "DeepSquare", font=font(32, bold=True), fill="white")
    pad = 28
    x0, x1 = sx0 + pad, sx1 - pad
    y = sy0 + 150
    # Photo area (280dp tall in the layout), the picked photo shown fitCenter on dark.
    area_h = 330
    draw.rectangle((x0, y, x1, y + area_h), fill=INK)
    pic = Image.open(GOLDEN / photo["png"]).convert("RGB")
    scale = min((x1 - x0) / pic.width, area_h / pic.height)
    pic = pic.resize((round(pic.width * scale), round(pic.height * scale)), Image.LANCZOS)
    img.paste(pic, (int(x0 + (x1 - x0 - pic.width) / 2), int(y + (area_h - pic.height) / 2)))
    y += area_h + 18
    mid = (x0 + x1) // 2
    button(draw, (x0, y, mid - 8, y + 60), "CLASSIFY FRAME")
    button(draw, (mid + 8, y, x1, y + 60), "PICK PHOTO")
    y += 80
    draw.text((x0, y + 8), "Threads", font=font(22), fill=INK)
    draw.text((x0 + 110, y + 8), "4", font=font(22), fill=INK)
    draw.line((x0 + 100, y + 40, x0 + 160, y + 40), fill=MUTED, width=2)
    draw.text((x0 + 220, y + 8), "GPU delegate", font=font(22), fill=INK)
    draw.rounded_rectangle((x1 - 70, y + 8, x1, y + 38), radius=15, fill=TRACK)
    draw.ellipse((x1 - 70, y + 4, x1 - 32, y + 42), fill="white", outline=MUTED, width=2)
    y += 62
    status = f"{photo['width']}x{photo['height']} photo, xnnpack, -- ms"
    draw.text((x0, y), status, font=font(19), fill=MUTED)
    y += 30
    info = f"{bundle['arch']} {bundle['variant']}, {bundle['input_size']} px, {len(bundle['classes'])} classes"
    draw.text((x0, y), info, font=font(19), fill=MUTED)
    y += 44
    draw.text((x0, y), "Top 5", font=font(28, bold=True), fill=INK)
    y += 46
    for entry in photo["top5"]:
        pct = f"{entry['probability'] * 100:.1f}%"
        draw.text((x0, y), entry["label"], font=font(22), fill=INK)
        f = font(22, mono=True)
        draw.text((x1 - draw.textlength(pct, font=f), y), pct, font=f, fill=INK)
        y += 32
        draw.rounded_rectangle((x0, y, x1, y + 10), radius=5, fill=TRACK)
        draw.rounded_rectangle((x0, y, x0 + max(10, (x1 - x0) * entry["probability"]), y + 10), radius=5, fill=ACCENT)
        y += 30
    y += 6
    button(draw, (x0, y, x1, y + 60), "LATENCY…", outlined=True)
    y += 78
    draw.text((x0, y), "Latency screen: p50 -- ms · p90 -- ms (not measured here)", font=font(17), fill=MUTED)
    # The label above the phone and the sources below it, impossible to miss.
    label = "MOCK-UP rendered from the layout, not a screenshot"
    f = font(24, bold=True)
    w = draw.textlength(label, font=f)
    draw.rectangle(((img.width - w) / 2 - 16, 12, (img.width + w) / 2 + 16, 56), fill=WARN)
    draw.text(((img.width - w) / 2, 18), label, font=f, fill="white")
    caption = f"photo {photo['name']}.png, top-5 from apps/testdata/golden/golden.json (Python, LiteRT logits)"
    f = font(16)
    draw.text(((img.width - draw.textlength(caption, font=f)) / 2, oy + height + 20), caption, font=f, fill=MUTED)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="chelsea", help="a photo name from apps/testdata/golden/golden.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "apps" / "android-mockup.png")
    args = parser.parse_args(argv)
    print(render(args.photo, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
