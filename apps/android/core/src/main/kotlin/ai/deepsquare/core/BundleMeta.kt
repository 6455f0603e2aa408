package ai.deepsquare.core

import com.google.gson.annotations.SerializedName

/** model.json as Gson reads it: every field optional here, so that [BundleMeta.check] can say what is missing. */
class BundleJson(
    val schema: String? = null,
    val id: String? = null,
    val arch: String? = null,
    val variant: String? = null,
    val classes: List<String?>? = null,
    @SerializedName("input_size") val inputSize: Int? = null,
    val mean: List<Double?>? = null,
    val std: List<Double?>? = null,
    @SerializedName("pixel_range") val pixelRange: String? = null,
    val formats: Map<String, FormatJson?>? = null,
    val provenance: Map<String, Any?>? = null,
    val sha256: Map<String, String?>? = null,
    val input: String? = null,
    val golden: String? = null,
    val samples: String? = null,
)

/** One entry of model.json's "formats", as Gson reads it. */
class FormatJson(
    val file: String? = null,
    val layout: String? = null,
    @SerializedName("input_name") val inputName: String? = null,
    @SerializedName("output_name") val outputName: String? = null,
    val precision: String? = null,
    val extra: Map<String, Any?>? = null,
    @SerializedName("input_dtype") val inputDtype: String? = null,
)

/** How a model file takes its input. */
enum class InputKind(val json: String) {
    /** Normalized float32, (x/255 - mean)/std, in the entry's layout: the app normalizes. */
    FLOAT32("float32"),

    /** Raw RGB pixels, uint8 [1, S, S, 3]: the graph normalizes; the app hands over the resized bitmap's bytes. */
    UINT8("uint8"),

    /** Core ML's ImageType: the model takes a picture. */
    IMAGE("image"),
}

/** One exported model file of the bundle, checked. */
data class FormatEntry(
    val file: String,
    val layout: String,
    val inputName: String,
    val outputName: String,
    val precision: String,
    val inputKind: InputKind,
    /** What the file returns: "logits" or "probabilities" (extra.outputs; logits when absent). */
    val outputs: String,
)

/**
 * model.json (schema "deepsquare-bundle/2", or "/1", read as float input without a golden file),
 * decoded by Gson and then checked field by field, each with its own message.
 */
data class BundleMeta(
    val schema: String,
    /** The bundle's id (a UUID written at export; null for schema /1). */
    val id: String?,
    val arch: String,
    val variant: String,
    val classes: List<String>,
    val inputSize: Int,
    val mean: List<Double>,
    val std: List<Double>,
    val formats: Map<String, FormatEntry>,
    /** What `deepsquare export --input` was: "float" or "uint8". */
    val input: String,
    /** The golden self-check file (golden.json), or null: a /1 bundle, or one exported without it. */
    val golden: String?,
    val samples: String?,
) {
    /** The entry of [format] (e.g. "tflite"), or a clear error naming what the bundle has. */
    fun format(format: String): FormatEntry =
        formats[format]
            ?: throw DeepSquareError(
                "this bundle has no $format model (it has ${formats.keys.joinToString(", ").ifEmpty { "none" }}): " +
                    "export it with `deepsquare export CKPT --to $format`",
            )

    companion object {
        const val SCHEMA_V2 = "deepsquare-bundle/2"
        const val SCHEMA_V1 = "deepsquare-bundle/1"
        val SCHEMAS = listOf(SCHEMA_V2, SCHEMA_V1)
        val LAYOUTS = setOf("NCHW", "NHWC", "image")
        val PRECISIONS = setOf("fp32", "fp16", "int8")
        private val HEX64 = Regex("[0-9a-f]{64}")
        private val UUID = Regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

        /** A file or folder directly inside the bundle folder (no path separator, not . or ..). */
        fun isBundleFileName(name: String): Boolean =
            name.isNotEmpty() && name != "." && name != ".." && '/' !in name && '\\' !in name

        /** Read and check model.json's text; [source] names the file in every message. */
        fun parse(text: String, source: String = "model.json"): BundleMeta {
            val json =
                try {
                    StrictJson.decode(text, BundleJson::class.java)
                } catch (e: StrictJson.Failure) {
                    throw DeepSquareError("$source cannot be read: ${e.why}. Copy the bundle again or re-export it.", e)
                }
            return check(json, source)
        }

        /** UTF-8 bytes (an asset); invalid UTF-8 is an error, not a replacement character. */
        fun parse(bytes: ByteArray, source: String = "model.json"): BundleMeta = parse(utf8(bytes, source), source)

        /** Every check that keeps a wrong bundle from running, with a message that says what to do. */
        fun check(json: BundleJson, source: String = "model.json"): BundleMeta {
            fun bad(what: String): Nothing = throw DeepSquareError("$source: $what")
            val schema = json.schema ?: bad("no \"schema\" field: this is not a deepsquare bundle's model.json")
            if (schema !in SCHEMAS) {
                bad("schema \"$schema\" is not one this app reads (${SCHEMAS.joinToString(", ")}); " +
                    "export the bundle with a deepsquare version that writes one of them")
            }
            val arch = json.arch ?: bad("no \"arch\" (the architecture's name)")
            val variant = json.variant ?: bad("no \"variant\"")
            val classes = json.classes ?: bad("no \"classes\": the app cannot name its answers")
            if (classes.isEmpty()) bad("\"classes\" is empty: the app cannot name its answers")
            if (classes.any { it.isNullOrEmpty() }) bad("\"classes\" has an empty or null class name")
            classes.groupingBy { it }.eachCount().entries.firstOrNull { it.value > 1 }?.let {
                bad("class \"${it.key}\" appears ${it.value} times in \"classes\": the answers would be ambiguous")
            }
            val size = json.inputSize ?: bad("no \"input_size\": the app does not know what size to resize to")
            if (size !in 8..4096) bad("\"input_size\" is $size pixels; it must be 8 to 4096")
            val mean = triple(json.mean, "mean", source)
            val std = triple(json.std, "std", source)
            if (std.any { it <= 0.0 }) bad("\"std\" must be three positive numbers, it is $std (a division by it)")
            val v2 = schema == SCHEMA_V2
            val id = json.id
            if (v2 && (id == null || !UUID.matches(id))) bad("\"id\" must be the bundle's UUID, it is ${id?.let { "\"$it\"" }}")
            if (json.pixelRange != null && json.pixelRange != "0-1") {
                bad("pixel_range \"${json.pixelRange}\" is not \"0-1\" (x / 255 before (x - mean) / std)")
            }
            val input = json.input ?: if (v2) bad("no \"input\" (float or uint8)") else "float"
            if (input !in setOf("float", "uint8")) bad("\"input\" is \"$input\"; it must be \"float\" or \"uint8\"")
            val formats = LinkedHashMap<String, FormatEntry>()
            for ((name, entry) in json.formats.orEmpty()) {
                formats[name] = formatEntry(name, entry ?: bad("format \"$name\" is null"), v2, source)
            }
            if (v2 && formats.isEmpty()) bad("\"formats\" lists no model file")
            for ((file, digest) in json.sha256.orEmpty()) {
                if (digest == null || !HEX64.matches(digest)) {
                    bad("\"sha256\" of $file must be 64 lowercase hex digits, it is ${digest?.take(70)}")
                }
            }
            for ((field, value) in listOf("golden" to json.golden, "samples" to json.samples)) {
                if (value != null && value != "$field.json") bad("\"$field\" must be \"$field.json\" or null, it is \"$value\"")
            }
            return BundleMeta(
                schema = schema,
                id = if (v2) id else null,
                arch = arch,
                variant = variant,
                classes = classes.map { it!! },
                inputSize = size,
                mean = mean,
                std = std,
                formats = formats,
                input = if (v2) input else "float",
                golden = if (v2) json.golden else null,
                samples = if (v2) json.samples else null,
            )
        }

        private fun triple(values: List<Double?>?, name: String, source: String): List<Double> {
            if (values == null) throw DeepSquareError("$source: no \"$name\" (needed to normalize the pixels)")
            if (values.size != 3 || values.any { it == null || !it.isFinite() }) {
                throw DeepSquareError("$source: \"$name\" must be three numbers (R, G, B), it is $values")
            }
            return values.map { it!! }
        }

        private fun formatEntry(name: String, entry: FormatJson, v2: Boolean, source: String): FormatEntry {
            fun bad(what: String): Nothing = throw DeepSquareError("$source: format \"$name\": $what")
            val file = entry.file ?: bad("no \"file\"")
            if (!isBundleFileName(file)) bad("\"file\" must name a file directly inside the bundle, it is \"$file\"")
            val layout = entry.layout ?: bad("no \"layout\"")
            if (layout !in LAYOUTS) bad("layout \"$layout\" is not one of ${LAYOUTS.joinToString(", ")}")
            val dtype = entry.inputDtype
                ?: if (v2) bad("no \"input_dtype\" (float32, uint8 or image)") else if (layout == "image") "image" else "float32"
            val kind = InputKind.values().firstOrNull { it.json == dtype }
                ?: bad("input_dtype \"$dtype\" is not one of float32, uint8, image: a newer exporter? Update the app")
            if (!v2 && kind != InputKind.FLOAT32 && kind != InputKind.IMAGE) {
                bad("input_dtype \"$dtype\" needs schema $SCHEMA_V2")
            }
            if (kind == InputKind.UINT8 && layout != "NHWC") bad("a uint8 input must be NHWC pixels, the layout is $layout")
            if ((kind == InputKind.IMAGE) != (layout == "image")) bad("input_dtype \"$dtype\" does not go with layout \"$layout\"")
            val precision = entry.precision ?: if (v2) bad("no \"precision\"") else "fp32"
            if (precision !in PRECISIONS) bad("precision \"$precision\" is not one of ${PRECISIONS.joinToString(", ")}")
            val outputs = entry.extra?.get("outputs") ?: "logits"
            if (outputs != "logits" && outputs != "probabilities") {
                bad("extra.outputs is \"$outputs\"; it must be \"logits\" or \"probabilities\"")
            }
            return FormatEntry(
                file = file,
                layout = layout,
                inputName = entry.inputName ?: bad("no \"input_name\""),
                outputName = entry.outputName ?: bad("no \"output_name\""),
                precision = precision,
                inputKind = kind,
                outputs = outputs as String,
            )
        }
    }
}

/** Bytes -> text, refusing invalid UTF-8 (a damaged copy) rather than replacing it. */
internal fun utf8(bytes: ByteArray, source: String): String =
    try {
        Charsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString()
    } catch (e: java.nio.charset.CharacterCodingException) {
        throw DeepSquareError("$source cannot be read: it is not UTF-8 text. Copy the bundle again or re-export it.", e)
    }
