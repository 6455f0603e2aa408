package ai.deepsquare.core

import kotlin.math.abs
import kotlin.math.ceil
import kotlin.math.max

/**
 * Photo -> model input, exactly as deepsquare.runtime does it in Python (Pillow + numpy); a port
 * of apps/web/src/preprocess.js.
 *
 * Pillow's BILINEAR resize is a triangle filter whose support grows with the downscale factor
 * (antialiased), computed in fixed point with 22 fractional bits on 8-bit pixels, horizontal
 * pass first, each pass clipped back to uint8. For the same decoded pixels the result equals
 * Pillow's byte for byte (the JUnit tests check it against apps/testdata/golden).
 */
object Preprocess {
    private const val PRECISION_BITS = 32 - 8 - 2
    private const val HALF = 1 shl (PRECISION_BITS - 1)

    private class Coefficients(val bounds: IntArray, val weights: IntArray, val ksize: Int)

    private fun triangle(x: Double): Double {
        val a = abs(x)
        return if (a < 1.0) 1.0 - a else 0.0
    }

    /** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
    private fun coefficients(inSize: Int, outSize: Int): Coefficients {
        val scale = inSize.toDouble() / outSize
        val filterscale = max(scale, 1.0)
        val support = 1.0 * filterscale
        val ksize = ceil(support).toInt() * 2 + 1
        val bounds = IntArray(outSize * 2)
        val weights = IntArray(outSize * ksize)
        val k = DoubleArray(ksize)
        for (xx in 0 until outSize) {
            val center = (xx + 0.5) * scale
            val ss = 1.0 / filterscale
            var xmin = (center - support + 0.5).toInt() // C (int): truncation toward zero
            if (xmin < 0) xmin = 0
            var xmax = (center + support + 0.5).toInt()
            if (xmax > inSize) xmax = inSize
            xmax -= xmin
            var ww = 0.0
            for (x in 0 until xmax) {
                k[x] = triangle((x + xmin - center + 0.5) * ss)
                ww += k[x]
            }
            for (x in 0 until xmax) {
                val w = if (ww != 0.0) k[x] / ww else k[x]
                weights[xx * ksize + x] = ((if (w < 0) -0.5 else 0.5) + w * (1 shl PRECISION_BITS)).toInt()
            }
            bounds[xx * 2] = xmin
            bounds[xx * 2 + 1] = xmax
        }
        return Coefficients(bounds, weights, ksize)
    }

    private fun clip8(sum: Int): Int {
        val shifted = sum shr PRECISION_BITS
        return if (shifted < 0) 0 else if (shifted > 255) 255 else shifted
    }

    /**
     * Resize row-major pixels with [channels] bytes each (3 = RGB, 4 = RGBA; extra channels are
     * ignored) to outW x outH RGB (HWC) with Pillow's BILINEAR filter.
     */
    fun resizeBilinear(pixels: ByteArray, width: Int, height: Int, outW: Int, outH: Int, channels: Int = 3): ByteArray {
        if (width <= 0 || height <= 0 || outW <= 0 || outH <= 0) {
            throw DeepSquareError("cannot resize a ${width}x$height image to ${outW}x$outH")
        }
        if (channels < 3) throw DeepSquareError("expected RGB or RGBA pixels (3 or 4 channels), got $channels")
        val expected = width.toLong() * height * channels
        if (pixels.size.toLong() != expected) {
            throw DeepSquareError(
                "expected $expected bytes for ${width}x$height with $channels channels, got ${pixels.size}",
            )
        }
        // Pillow skips a pass whose size does not change.
        val horiz = if (outW != width) coefficients(width, outW) else null
        val vert = if (outH != height) coefficients(height, outH) else null
        // Rows the vertical pass reads: only those go through the horizontal pass (as in Pillow).
        var yFirst = 0
        var yLast = height
        if (vert != null) {
            yFirst = vert.bounds[0]
            yLast = vert.bounds[(outH - 1) * 2] + vert.bounds[(outH - 1) * 2 + 1]
        }
        val rows = yLast - yFirst
        val temp = ByteArray(rows * outW * 3)
        for (y in 0 until rows) {
            val inRow = (y + yFirst) * width * channels
            for (xx in 0 until outW) {
                val o = (y * outW + xx) * 3
                if (horiz == null) {
                    for (c in 0 until 3) temp[o + c] = pixels[inRow + xx * channels + c]
                    continue
                }
                val xmin = horiz.bounds[xx * 2]
                val xmax = horiz.bounds[xx * 2 + 1]
                val k = xx * horiz.ksize
                for (c in 0 until 3) {
                    var sum = HALF
                    for (x in 0 until xmax) {
                        sum += (pixels[inRow + (x + xmin) * channels + c].toInt() and 0xff) * horiz.weights[k + x]
                    }
                    temp[o + c] = clip8(sum).toByte()
                }
            }
        }
        if (vert == null) return temp
        val out = ByteArray(outH * outW * 3)
        for (yy in 0 until outH) {
            val ymin = vert.bounds[yy * 2] - yFirst
            val ymax = vert.bounds[yy * 2 + 1]
            val k = yy * vert.ksize
            for (xx in 0 until outW) {
                for (c in 0 until 3) {
                    var sum = HALF
                    for (y in 0 until ymax) {
                        sum += (temp[((y + ymin) * outW + xx) * 3 + c].toInt() and 0xff) * vert.weights[k + y]
                    }
                    out[(yy * outW + xx) * 3 + c] = clip8(sum).toByte()
                }
            }
        }
        return out
    }

    /** Android's Bitmap.getPixels layout (packed 0xAARRGGBB ints) -> RGB bytes, HWC; alpha is dropped. */
    fun argbToRgb(argb: IntArray, width: Int, height: Int): ByteArray {
        if (width <= 0 || height <= 0 || argb.size.toLong() != width.toLong() * height) {
            throw DeepSquareError("expected ${width.toLong() * height} pixels for ${width}x$height, got ${argb.size}")
        }
        val out = ByteArray(argb.size * 3)
        for (i in argb.indices) {
            val p = argb[i]
            out[i * 3] = (p shr 16).toByte()
            out[i * 3 + 1] = (p shr 8).toByte()
            out[i * 3 + 2] = p.toByte()
        }
        return out
    }

    /**
     * RGB bytes (HWC, size x size) -> float32 NHWC model input: f(f(f(byte) / 255) - mean[c]) / std[c],
     * the float32 operations numpy does in runtime/preprocess.py, in the same order.
     */
    fun toTensorNhwc(rgb: ByteArray, size: Int, mean: List<Double>, std: List<Double>): FloatArray {
        if (mean.size != 3 || std.size != 3) throw DeepSquareError("mean and std must have 3 values (R, G, B)")
        if (size <= 0 || rgb.size.toLong() != size.toLong() * size * 3) {
            throw DeepSquareError("expected ${size.toLong() * size * 3} RGB bytes for ${size}x$size, got ${rgb.size}")
        }
        val m = FloatArray(3) { mean[it].toFloat() }
        val s = FloatArray(3) { std[it].toFloat() }
        val out = FloatArray(rgb.size)
        for (p in 0 until size * size) {
            for (c in 0 until 3) {
                val v = (rgb[p * 3 + c].toInt() and 0xff).toFloat() / 255f - m[c]
                out[p * 3 + c] = v / s[c]
            }
        }
        return out
    }

    /** Decoded RGB/RGBA pixels -> model input for [meta] (Pillow BILINEAR to input_size, then normalize). */
    fun imageToTensor(pixels: ByteArray, width: Int, height: Int, meta: BundleMeta, channels: Int = 3): FloatArray {
        val size = meta.inputSize
        return toTensorNhwc(resizeBilinear(pixels, width, height, size, size, channels), size, meta.mean, meta.std)
    }

    /** A tensor must match the model's input [1, S, S, 3]; a clear error otherwise. */
    fun checkTensor(tensor: FloatArray, meta: BundleMeta) {
        val s = meta.inputSize
        if (tensor.size != s * s * 3) {
            throw DeepSquareError(
                "the input has ${tensor.size} values, but the model takes [1, $s, $s, 3] = ${s * s * 3}",
            )
        }
    }
}
