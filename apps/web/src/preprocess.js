// Photo -> model input, exactly as deepsquare.runtime.images / preprocess do it in Python.
//
// Python resizes with Pillow's BILINEAR filter: a triangle filter whose support grows with the
// downscale factor (an antialiased resize, unlike the canvas' drawImage scaling), computed in
// fixed point on 8-bit pixels, horizontal pass first, each pass rounded back to 8 bits.
// resizeBilinear() below reproduces Pillow's Resample.c step by step, so that for the same
// decoded pixels the page's input tensor equals Python's bit for bit (tests/test_web_app.py).
// Plain functions on typed arrays: runs in the browser and under Node alike.

const PRECISION_BITS = 32 - 8 - 2; // Pillow: fixed-point weights with 22 fractional bits

function triangle(x) {
  const a = Math.abs(x);
  return a < 1.0 ? 1.0 - a : 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: per output index,
// the first input index, the number of taps, and integer weights.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale; // the triangle's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    const k = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      k[x] = triangle((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0.0 ? k[x] / ww : k[x];
      // (int)(+-0.5 + w * 2^22): C truncates toward zero
      weights[xx * ksize + x] = Math.trunc((w < 0 ? -0.5 : 0.5) + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function clip8(value) {
  const shifted = Math.floor(value / (1 << PRECISION_BITS)); // the sum is an int: >> 22
  return shifted < 0 ? 0 : shifted > 255 ? 255 : shifted;
}

/**
 * Resize RGBA (canvas ImageData layout) or RGB pixels to outW x outH RGB with Pillow's BILINEAR.
 * @param {Uint8ClampedArray|Uint8Array} pixels row-major, `channels` bytes per pixel
 * @returns {Uint8Array} outH * outW * 3 bytes, RGB
 */
export function resizeBilinear(pixels, width, height, outW, outH, channels = 4) {
  if (!(width > 0 && height > 0 && outW > 0 && outH > 0)) {
    throw new Error(`cannot resize a ${width}x${height} image to ${outW}x${outH}`);
  }
  if (pixels.length !== width * height * channels) {
    throw new Error(`expected ${width * height * channels} bytes for ${width}x${height}, got ${pixels.length}`);
  }
  const half = 1 << (PRECISION_BITS - 1);
  // Pillow skips a pass whose size does not change.
  const horiz = outW !== width ? coefficients(width, outW) : null;
  const vert = outH !== height ? coefficients(height, outH) : null;
  // Rows the vertical pass reads: only those go through the horizontal pass (as in Pillow).
  let yFirst = 0;
  let yLast = height;
  if (vert) {
    yFirst = vert.bounds[0];
    yLast = vert.bounds[(outH - 1) * 2] + vert.bounds[(outH - 1) * 2 + 1];
  }
  const rows = yLast - yFirst;
  let temp = new Uint8Array(rows * outW * 3);
  for (let y = 0; y < rows; y++) {
    const inRow = (y + yFirst) * width * channels;
    for (let xx = 0; xx < outW; xx++) {
      const o = (y * outW + xx) * 3;
      if (!horiz) {
        for (let c = 0; c < 3; c++) temp[o + c] = pixels[inRow + xx * channels + c];
        continue;
      }
      const xmin = horiz.bounds[xx * 2];
      const xmax = horiz.bounds[xx * 2 + 1];
      const k = xx * horiz.ksize;
      for (let c = 0; c < 3; c++) {
        let sum = half;
        for (let x = 0; x < xmax; x++) sum += pixels[inRow + (x + xmin) * channels + c] * horiz.weights[k + x];
        temp[o + c] = clip8(sum);
      }
    }
  }
  if (!vert) return temp;
  const out = new Uint8Array(outH * outW * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = vert.bounds[yy * 2] - yFirst;
    const ymax = vert.bounds[yy * 2 + 1];
    const k = yy * vert.ksize;
    for (let xx = 0; xx < outW; xx++) {
      for (let c = 0; c < 3; c++) {
        let sum = half;
        for (let y = 0; y < ymax; y++) sum += temp[((y + ymin) * outW + xx) * 3 + c] * vert.weights[k + y];
        out[(yy * outW + xx) * 3 + c] = clip8(sum);
      }
    }
  }
  temp = null;
  return out;
}

/**
 * RGB bytes (HWC) -> float32 model input: [0, 1], then (x - mean) / std, in NCHW or NHWC.
 * Same float32 arithmetic order as numpy's ((x / 255) - mean) / std in runtime/preprocess.py.
 */
export function toTensor(rgb, size, mean, std, layout) {
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new Error(`unknown tensor layout ${layout}`);
  const plane = size * size;
  const out = new Float32Array(plane * 3);
  const m = Float32Array.from(mean);
  const s = Float32Array.from(std);
  const f = Math.fround;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const value = f(f(f(rgb[p * 3 + c]) / 255) - m[c]);
      out[layout === 'NCHW' ? c * plane + p : p * 3 + c] = f(value / s[c]);
    }
  }
  return out;
}

/** Softmax in float64 (stable), for display. */
export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** The k best classes: [{index, label, probability, logit}], highest first; ties by index. */
export function topK(logits, classes, k = 5) {
  const probs = softmax(logits);
  return Array.from(logits, (logit, index) => ({ index, label: classes[index], probability: probs[index], logit }))
    .sort((a, b) => b.logit - a.logit || a.index - b.index)
    .slice(0, Math.min(k, logits.length));
}
