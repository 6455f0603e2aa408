// Photo -> model input. The resize is the browser's own (canvas drawImage); what the bundle's
// models need beyond the pixels comes from model.json.
//
// The rule, the same as `deepsquare predict` (deepsquare.runtime.images): the whole photo, EXIF
// orientation applied, colours as stored (no colour-space conversion), is stretched to
// input_size x input_size (no crop; the aspect ratio is not kept) with smoothing. Python resizes
// with Pillow's BILINEAR, the page with Chromium's high-quality drawImage: the same rule, not the
// same arithmetic (on the test photos the pixels differ by about one level on average; at sharp
// edges by more). golden.png and the bundle's samples are already at input_size: no resize.
//
// A uint8 bundle (input_dtype "uint8") takes these RGB pixels as they are, [1, H, W, 3] uint8: /255,
// - mean, / std and the layout change are inside its graphs. A float bundle takes toTensor()'s
// float32 tensor.

export const MAX_PIXELS = 64_000_000; // as `deepsquare predict`: a larger photo needs downscaling first

/**
 * Decode an image file to RGB bytes (HWC) at size x size, by the rule above.
 * @returns {Promise<{rgb: Uint8Array, width: number, height: number}>} the pixels and the decoded size
 */
export async function decodeToRgb(blob, name, size) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`cannot read ${name}: not an image this browser can decode`);
  }
  const { width, height } = bitmap;
  try {
    if (width * height > MAX_PIXELS) {
      throw new Error(`${name} is ${width}x${height} = ${(width * height).toLocaleString('en')} pixels, over the limit of ${MAX_PIXELS.toLocaleString('en')}; downscale it first`);
    }
    return { rgb: drawToRgb(bitmap, size), width, height };
  } finally {
    bitmap.close();
  }
}

/** Any drawable (ImageBitmap, video frame) stretched to size x size -> RGB bytes, HWC. */
export function drawToRgb(source, size, sourceWidth = source.width, sourceHeight = source.height) {
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, sourceWidth, sourceHeight, 0, 0, size, size);
  return rgbaToRgb(ctx.getImageData(0, 0, size, size).data);
}

export function rgbaToRgb(rgba) {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p];
    rgb[q + 1] = rgba[p + 1];
    rgb[q + 2] = rgba[p + 2];
  }
  return rgb;
}

/**
 * RGB bytes (HWC) -> float32 model input of a float bundle: [0, 1], then (x - mean) / std, NCHW or NHWC,
 * in float32 arithmetic in numpy's order ((x / 255) - mean) / std.
 */
export function toTensor(rgb, size, mean, std, layout) {
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new Error(`unknown tensor layout ${layout}`);
  const plane = size * size;
  const out = new Float32Array(plane * 3);
  const f = Math.fround;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const value = f(f(f(rgb[p * 3 + c]) / 255) - f(mean[c]));
      out[layout === 'NCHW' ? c * plane + p : p * 3 + c] = f(value / f(std[c]));
    }
  }
  return out;
}

/** What one format's model takes for these pixels: the pixels themselves (uint8 bundles) or toTensor's. */
export function modelInput(rgb, meta, entry) {
  if (entry.input_dtype === 'uint8') return rgb;
  return toTensor(rgb, meta.input_size, meta.mean, meta.std, entry.layout);
}

/** Softmax in float64 (stable), for display. */
export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/**
 * The k best classes: [{index, label, probability, logit}], highest first; ties by index.
 * `probabilities`: the model already returns probabilities (a classifier head), not logits.
 */
export function topK(scores, classes, k = 5, probabilities = false) {
  const probs = probabilities ? Array.from(scores) : softmax(scores);
  return Array.from(scores, (logit, index) => ({ index, label: classes[index], probability: probs[index], logit }))
    .sort((a, b) => b.logit - a.logit || a.index - b.index)
    .slice(0, Math.min(k, scores.length));
}
