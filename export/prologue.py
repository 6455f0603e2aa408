"""``deepsquare export --input uint8``: the preprocessing inside the graph.

The exported graph takes the image as the platforms hand it over: RGB pixels, ``uint8``, NHWC ``[N, H, W, 3]``
at the model's input size. The prologue casts them to float, scales and shifts them with the bundle's mean and
std (``x * 1/(255 std) - mean/std``, one multiply and one add per channel: the same numbers as training's
``(x/255 - mean) / std`` up to float32 round-off) and changes the layout to the NCHW the model was trained in;
each converter then lowers that as its runtime likes it (LiteRT and XNNPACK keep NHWC throughout). Resize and
crop stay in the app, with the rule of ``deepsquare predict`` (Pillow's BILINEAR of the whole image to the
square input, see ``deepsquare.runtime.images``).

Core ML is not wrapped: its ``ImageType`` already takes pixels (the bundle entry says ``input_dtype: "image"``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deepsquare.runtime.bundle import BundleMeta

# The formats whose graph takes uint8 pixels with --input uint8; Core ML keeps its ImageType.
PIXEL_FORMATS = ("onnx", "tflite", "executorch")
NHWC_RUNTIMES = ("tflite", "executorch")  # XNNPACK: the normalization as a 1x1 convolution (see PixelPrologue)


class PixelPrologue(nn.Module):
    """``uint8 [N, H, W, 3]`` RGB -> ``float32 [N, 3, H, W]`` normalized -> ``model``.

    The per-channel scale and shift is one multiply and one add (``pointwise=False``, for ONNX Runtime, which runs
    them on NCHW planes), or a 1x1 convolution with the scales on its diagonal and the shifts as its bias
    (``pointwise=True``, for the NHWC runtimes: XNNPACK in LiteRT and ExecuTorch). A per-channel MUL and ADD over
    NHWC broadcast a 3-wide constant along the innermost axis, which XNNPACK runs row by row: measured at 224 px on
    one thread, 0.6 ms more than a bare first convolution, the 1x1 convolution 0.09 ms (CAST included); ONNX
    Runtime's broadcast over NHWC was as slow (2.2 ms per op), hence the NCHW planes there.
    """

    def __init__(self, model: nn.Module, mean: list[float], std: list[float], pointwise: bool = False) -> None:
        super().__init__()
        self.model = model
        std_t = torch.tensor(std, dtype=torch.float32)
        scale, shift = 1.0 / (255.0 * std_t), -torch.tensor(mean, dtype=torch.float32) / std_t
        self.pointwise = nn.Conv2d(3, 3, 1) if pointwise else None
        if self.pointwise is not None:
            with torch.no_grad():
                self.pointwise.weight.copy_(torch.diag(scale).view(3, 3, 1, 1))
                self.pointwise.bias.copy_(shift)
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.register_buffer("shift", shift.view(1, 3, 1, 1))

    def forward(self, pixels: Tensor) -> Tensor:
        x = pixels.to(torch.float32).permute(0, 3, 1, 2)
        return self.model(self.pointwise(x) if self.pointwise is not None else x * self.scale + self.shift)


def takes_pixels(fmt: str, meta: BundleMeta) -> bool:
    """Whether format ``fmt`` of a bundle exported with ``meta.input`` gets the prologue."""
    return meta.input == "uint8" and fmt in PIXEL_FORMATS


def pixel_batch(normalized: Tensor, mean: list[float], std: list[float]) -> Tensor:
    """Normalized NCHW images -> the ``uint8 [N, H, W, 3]`` pixels they are closest to (exact for images that came
    from pixels: the parity inputs of the uint8 path, see ``deepsquare.export.verify.parity_inputs``)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    values = torch.round((normalized.float() * s + m) * 255.0).clamp(0, 255)
    return values.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def on_pixels(
    fmt: str, model: nn.Module, example: Tensor, calibration: Tensor | None, meta: BundleMeta
) -> tuple[nn.Module, Tensor, Tensor | None]:
    """What a converter of ``fmt`` is given: the model with its prologue and pixel examples and calibration
    images when the bundle takes uint8 pixels, else the model and the normalized tensors unchanged."""
    if not takes_pixels(fmt, meta):
        return model, example, calibration
    wrapped = PixelPrologue(model, meta.mean, meta.std, pointwise=fmt in NHWC_RUNTIMES).eval()
    pixels = None if calibration is None else pixel_batch(calibration, meta.mean, meta.std)
    return wrapped, pixel_batch(example, meta.mean, meta.std), pixels


def as_pixel_images(images: Tensor) -> Tensor:
    """NCHW images in [0, 1] rounded to the nearest of the 256 pixel levels (what a uint8 graph can be fed)."""
    return torch.round(images.float().clamp(0, 1) * 255.0) / 255.0


def random_pixel_images(count: int, size: int, seed: int) -> Tensor:
    """``count`` NCHW images of uniform random pixel levels in [0, 1] (the fixed random batch of the uint8 path)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), generator=generator).float() / 255.0
