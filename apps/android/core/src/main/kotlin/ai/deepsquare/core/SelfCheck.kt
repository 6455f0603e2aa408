package ai.deepsquare.core

import kotlin.math.abs

/** golden.json as Gson reads it (schema "deepsquare-golden/1"); all fields optional until checked. */
class GoldenJson(
    val schema: String? = null,
    val image: String? = null,
    val label: String? = null,
    val formats: Map<String, GoldenFormatJson?>? = null,
)

class GoldenFormatJson(
    val outputs: String? = null,
    val values: List<Double?>? = null,
    val tolerance: Double? = null,
    val measured: Boolean? = null,
)

/** What one model file must return for the golden image, and how close it must come. */
data class GoldenExpectation(
    val format: String,
    val outputs: String,
    val values: DoubleArray,
    val tolerance: Double,
    val measured: Boolean,
)

/** The golden self-check file of a bundle: one image at the model's input size and what each format returns for it. */
data class Golden(val image: String, val label: String?, val expectations: Map<String, GoldenExpectation>) {
    fun expectation(format: String): GoldenExpectation =
        expectations[format]
            ?: throw DeepSquareError(
                "golden.json has no expected output for $format (it has ${expectations.keys.joinToString(", ")}): " +
                    "re-export the bundle",
            )

    companion object {
        const val SCHEMA = "deepsquare-golden/1"

        fun parse(text: String, meta: BundleMeta, source: String = "golden.json"): Golden {
            fun bad(what: String): Nothing = throw DeepSquareError("$source: $what")
            val json =
                try {
                    StrictJson.decode(text, GoldenJson::class.java)
                } catch (e: StrictJson.Failure) {
                    throw DeepSquareError("$source cannot be read: ${e.why}. Copy the bundle again or re-export it.", e)
                }
            if (json.schema != SCHEMA) bad("schema \"${json.schema}\" is not $SCHEMA")
            val image = json.image ?: bad("no \"image\"")
            if (!BundleMeta.isBundleFileName(image)) bad("\"image\" must name a file inside the bundle, it is \"$image\"")
            val label = json.label // null: the export could not load the data; the image is synthetic
            if (label != null && label !in meta.classes) bad("label \"$label\" is not one of model.json's classes")
            val expectations = LinkedHashMap<String, GoldenExpectation>()
            for ((name, f) in json.formats.orEmpty()) {
                f ?: bad("format \"$name\" is null")
                val outputs = f.outputs ?: bad("format \"$name\" has no \"outputs\"")
                if (outputs != "logits" && outputs != "probabilities") {
                    bad("format \"$name\": outputs \"$outputs\" is not logits or probabilities")
                }
                val values = f.values ?: bad("format \"$name\" has no \"values\"")
                if (values.size != meta.classes.size || values.any { it == null || !it.isFinite() }) {
                    bad("format \"$name\": \"values\" must be ${meta.classes.size} numbers, one per class")
                }
                val tolerance = f.tolerance ?: bad("format \"$name\" has no \"tolerance\"")
                if (!tolerance.isFinite() || tolerance <= 0) bad("format \"$name\": tolerance $tolerance is not > 0")
                expectations[name] =
                    GoldenExpectation(name, outputs, values.map { it!! }.toDoubleArray(), tolerance, f.measured ?: false)
            }
            if (expectations.isEmpty()) bad("no format has expected values")
            return Golden(image, label, expectations)
        }
    }
}

/** The outcome of one self-check; [message] is what the app shows. */
data class SelfCheckResult(
    val passed: Boolean,
    val maxDiff: Double,
    val tolerance: Double,
    val worstClass: String,
    val message: String,
)

/**
 * The golden self-check: the app feeds golden.png through its own path (the uint8 pixels for a uint8
 * bundle, normalized floats for a float one), runs the model, and compares what came out with
 * golden.json's values for that format. It runs when a bundle loads, before anything is classified.
 */
object SelfCheck {
    /** golden.png's decoded pixels -> the model input, refusing an image that is not input_size square. */
    fun input(rgb: ByteArray, width: Int, height: Int, meta: BundleMeta, entry: FormatEntry): ModelInput {
        val s = meta.inputSize
        if (width != s || height != s) {
            throw DeepSquareError("the golden image is ${width}x$height, the model's input is ${s}x$s: re-export the bundle")
        }
        return ModelInput.of(rgb, meta, entry)
    }

    /** Compare the model's [output] (as [entry] returns it) with [expected]. */
    fun compare(output: FloatArray, meta: BundleMeta, entry: FormatEntry, expected: GoldenExpectation): SelfCheckResult {
        if (output.size != meta.classes.size) {
            throw DeepSquareError("the model returned ${output.size} values for ${meta.classes.size} classes")
        }
        val mine =
            when {
                entry.outputs == expected.outputs -> DoubleArray(output.size) { output[it].toDouble() }
                entry.outputs == "logits" -> Classify.softmax(output) // golden holds probabilities
                else -> throw DeepSquareError(
                    "the model returns probabilities but golden.json holds logits for ${expected.format}: re-export the bundle",
                )
            }
        var worst = 0
        var maxDiff = 0.0
        for (i in mine.indices) {
            val d = abs(mine[i] - expected.values[i])
            if (d.isNaN() || d > maxDiff) {
                maxDiff = if (d.isNaN()) Double.POSITIVE_INFINITY else d
                worst = i
            }
        }
        val passed = maxDiff <= expected.tolerance
        val figures = "max |diff| ${fmt(maxDiff)}, tolerance ${fmt(expected.tolerance)}, ${expected.outputs}"
        val message =
            if (passed) {
                "self-check passed ($figures)"
            } else {
                "self-check FAILED: the model's ${expected.outputs} for the golden image differ from the export's by " +
                    "${fmt(maxDiff)} at class \"${meta.classes[worst]}\" (allowed ${fmt(expected.tolerance)}). The app " +
                    "and the model disagree (input kind, pixels or model file): its answers cannot be trusted; " +
                    "install the bundle again"
            }
        return SelfCheckResult(passed, maxDiff, expected.tolerance, meta.classes[worst], message)
    }

    private fun fmt(x: Double): String = if (x == 0.0) "0" else String.format(java.util.Locale.ROOT, "%.2g", x)
}
