"""The one image loader: a file -> RGB pixels, for predict, image-folder training and calibration alike.

numpy and Pillow only (no torch), so the runtime, the trainer and the exporter decode a photo
the same way:

- EXIF orientation is applied (a phone photo is seen upright, as its viewer shows it);
- 16-bit and 32-bit integer images are scaled by their type's range, float images are taken
  as [0, 1] (or [0, 255] when a value exceeds 1), never clipped to white or black;
- palette, grey, CMYK and YCbCr images are converted to RGB; an alpha channel is dropped
  (the stored colour is used, as ``Image.convert("RGB")`` does);
- an image over ``MAX_PIXELS`` is refused before it is decoded (a decompression bomb, or a
  photo that needs downscaling first), as is a file Pillow cannot identify.

The resize is Pillow's BILINEAR on the RGB image (a triangle filter whose support grows with
the downscale factor): the web and mobile apps reproduce exactly this.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

MAX_PIXELS = 64_000_000  # 8000 x 8000: far above any camera photo a classifier needs


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


def _to_rgb(img):  # PIL.Image -> PIL.Image in mode RGB
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            scaled = values / 65535.0
        elif mode == "I":
            scaled = values / (65535.0 if values.max(initial=0) <= 65535 else 4294967295.0)
        else:  # float: [0, 1], or [0, 255] when a value exceeds 1
            finite = values[np.isfinite(values)]
            scaled = values / (255.0 if finite.size and finite.max() > 1.0 else 1.0)
        grey = np.clip(np.rint(np.nan_to_num(scaled) * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    return img if mode == "RGB" else img.convert("RGB")


def load_rgb(path: str | Path):
    """Decode ``path`` to an upright RGB ``PIL.Image``; :class:`ImageError` with one line otherwise."""
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError as exc:
        raise ImageError("reading images needs Pillow: pip install 'deepsquare[data]'") from exc
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"image {path} is {width}x{height} = {width * height:,} pixels, over the limit "
                        f"of {MAX_PIXELS:,}; downscale it first"
                    )
                img.load()
                return _to_rgb(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image {path} is too large to decode safely ({exc}); downscale it first") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot read image {path}: not an image format Pillow knows") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"cannot read image {path}: {exc}") from exc


def load_image(path: str | Path, size: int) -> np.ndarray:
    """An image file as float32 HWC RGB in [0, 1], resized to ``size`` x ``size`` (BILINEAR)."""
    from PIL import Image

    rgb = load_rgb(path).resize((size, size), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.float32) / 255.0
