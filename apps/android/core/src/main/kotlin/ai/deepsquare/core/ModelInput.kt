package ai.deepsquare.core

/**
 * What the app hands the model, made from the resized bitmap's RGB bytes (HWC, input_size x input_size;
 * the platform resizes: Bitmap.createScaledBitmap with filtering, the whole image, no crop).
 *
 * For a uint8 entry the bytes go in as they are: /255, - mean, / std and the layout are inside the graph.
 * A float32 entry (schema /1 bundles, `--input float`) is normalized here, in float32, in the entry's layout.
 */
sealed class ModelInput {
    /** uint8 [1, S, S, 3]. */
    class Pixels(val bytes: ByteArray) : ModelInput()

    /** float32 in [layout] order. */
    class Floats(val values: FloatArray, val layout: String) : ModelInput()

    companion object {
        /** The input [entry] takes, from [rgb] (S x S x 3 bytes, S = meta.inputSize). */
        fun of(rgb: ByteArray, meta: BundleMeta, entry: FormatEntry): ModelInput {
            val s = meta.inputSize
            if (rgb.size.toLong() != s.toLong() * s * 3) {
                throw DeepSquareError(
                    "the image has ${rgb.size} RGB bytes; the model takes $s x $s pixels = ${s * s * 3} bytes " +
                        "(resize it to the bundle's input_size first)",
                )
            }
            return when (entry.inputKind) {
                InputKind.UINT8 -> Pixels(rgb)
                InputKind.FLOAT32 -> Floats(normalize(rgb, s, meta.mean, meta.std, entry.layout), entry.layout)
                InputKind.IMAGE ->
                    throw DeepSquareError("${entry.file} takes a picture (Core ML ImageType); this app runs TFLite models")
            }
        }

        /** float32 ((x / 255) - mean[c]) / std[c], as numpy does it in float32, in NHWC or NCHW order. */
        fun normalize(rgb: ByteArray, size: Int, mean: List<Double>, std: List<Double>, layout: String): FloatArray {
            if (layout != "NHWC" && layout != "NCHW") throw DeepSquareError("cannot lay out a float input as $layout")
            val m = FloatArray(3) { mean[it].toFloat() }
            val sd = FloatArray(3) { std[it].toFloat() }
            val plane = size * size
            val out = FloatArray(plane * 3)
            for (p in 0 until plane) {
                for (c in 0 until 3) {
                    val v = ((rgb[p * 3 + c].toInt() and 0xff).toFloat() / 255f - m[c]) / sd[c]
                    out[if (layout == "NHWC") p * 3 + c else c * plane + p] = v
                }
            }
            return out
        }

        /** Android's Bitmap.getPixels / ImageIO's getRGB layout (packed 0xAARRGGBB) -> RGB bytes, HWC; alpha dropped. */
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
    }
}

/** The model file's tensors (from the runtime's own tensor API) against what model.json says. */
object ModelShapes {
    /** The input tensor's dimensions must be [1, S, S, 3] (NHWC) or [1, 3, S, S] (NCHW) for [entry]. */
    fun checkInput(dims: List<Int>, meta: BundleMeta, entry: FormatEntry) {
        val s = meta.inputSize
        val expected = if (entry.layout == "NCHW") listOf(1, 3, s, s) else listOf(1, s, s, 3)
        if (dims != expected) {
            throw DeepSquareError(
                "${entry.file} takes an input of shape $dims, but model.json says ${entry.inputKind.json} " +
                    "$expected (input_size $s, ${entry.layout}): the model file and model.json are from different exports",
            )
        }
    }

    /** The output must hold one value per class: [1, C] (or [C]). */
    fun checkOutput(dims: List<Int>, meta: BundleMeta, entry: FormatEntry) {
        val count = dims.fold(1L) { a, d -> a * d }
        if (dims.isEmpty() || dims.last() != meta.classes.size || count != meta.classes.size.toLong()) {
            throw DeepSquareError(
                "${entry.file} returns an output of shape $dims, but model.json lists ${meta.classes.size} classes: " +
                    "the model file and model.json are from different exports",
            )
        }
    }
}
