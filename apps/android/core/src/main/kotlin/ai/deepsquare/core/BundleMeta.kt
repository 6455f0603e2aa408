package ai.deepsquare.core

import java.math.BigInteger

/** One exported file of the bundle (model.json "formats" entry). */
data class FormatEntry(
    val file: String,
    val layout: String,
    val inputName: String,
    val outputName: String,
    val precision: String = "fp32",
    val extra: Map<String, Any?> = emptyMap(),
)

/**
 * model.json, schema "deepsquare-bundle/1": the same fields and the same checks (and, where
 * sensible, the same wording) as BundleMeta.from_dict in runtime/bundle.py.
 */
data class BundleMeta(
    val arch: String,
    val variant: String,
    val classes: List<String>,
    val inputSize: Int,
    val mean: List<Double>,
    val std: List<Double>,
    val pixelRange: String = "0-1",
    val formats: Map<String, FormatEntry> = emptyMap(),
    val provenance: Map<String, Any?> = emptyMap(),
    val schema: String = SCHEMA,
) {
    /** The fields the app and the Python tests compare, as JSON-ready values. */
    fun toMap(): Map<String, Any?> =
        linkedMapOf(
            "arch" to arch,
            "variant" to variant,
            "classes" to classes,
            "input_size" to inputSize,
            "mean" to mean,
            "std" to std,
            "pixel_range" to pixelRange,
            "formats" to
                formats.mapValues { (_, f) ->
                    linkedMapOf(
                        "file" to f.file,
                        "layout" to f.layout,
                        "input_name" to f.inputName,
                        "output_name" to f.outputName,
                        "precision" to f.precision,
                        "extra" to f.extra,
                    )
                },
            "provenance" to provenance,
            "schema" to schema,
        )

    companion object {
        const val SCHEMA = "deepsquare-bundle/1"
        private val REQUIRED = listOf("arch", "variant", "classes", "input_size", "mean", "std")
        private val FORMAT_FIELDS = listOf("file", "layout", "input_name", "output_name", "precision", "extra")

        /** Parse model.json text; [source] names the file in messages. */
        fun parse(text: String, source: String = "model.json"): BundleMeta {
            val data =
                try {
                    Json.parse(text)
                } catch (e: DeepSquareError) {
                    throw DeepSquareError("$source is not valid JSON (${e.message}); re-export the bundle", e)
                }
            try {
                return fromJson(data)
            } catch (e: DeepSquareError) {
                throw DeepSquareError("$source is not a valid bundle sidecar: ${e.message}", e)
            }
        }

        /** Parse UTF-8 bytes (a metadata buffer or an asset); invalid UTF-8 is an error, not a replacement char. */
        fun parse(bytes: ByteArray, source: String = "model.json"): BundleMeta {
            val text =
                try {
                    Charsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString()
                } catch (e: java.nio.charset.CharacterCodingException) {
                    throw DeepSquareError("$source is not valid JSON (not UTF-8 text); re-export the bundle", e)
                }
            return parse(text, source)
        }

        private fun isNumber(v: Any?): Boolean =
            when (v) {
                is Long, is BigInteger -> true
                is Double -> v.isFinite()
                else -> false
            }

        private fun toDouble(v: Any?): Double = (v as Number).toDouble()

        /** Checked field by field, like BundleMeta.from_dict: a wrong type or value names the field. */
        fun fromJson(data: Any?): BundleMeta {
            if (data !is Map<*, *>) throw DeepSquareError("expected a JSON object, found ${Json.pyType(data)}")
            if (data["schema"] != SCHEMA) {
                throw DeepSquareError("unknown bundle schema ${Json.pyRepr(data["schema"])}; expected $SCHEMA")
            }
            val missing = REQUIRED.filter { it !in data.keys }.sorted()
            if (missing.isNotEmpty()) throw DeepSquareError("missing field(s) ${missing.joinToString(", ")}")
            for (name in listOf("arch", "variant", "pixel_range")) {
                if (name in data.keys && data[name] !is String) {
                    throw DeepSquareError("'$name' must be a string, got ${Json.pyRepr(data[name])}")
                }
            }
            val classes = data["classes"]
            if (classes !is List<*> || classes.isEmpty() || !classes.all { it is String }) {
                throw DeepSquareError(
                    "'classes' must be a non-empty list of strings, got ${Json.pyRepr(classes).take(60)}",
                )
            }
            val size = data["input_size"]
            if (size !is Long || size !in 8L..4096L) {
                throw DeepSquareError(
                    "'input_size' must be a whole number of pixels in 8..4096, got ${Json.pyRepr(size)}",
                )
            }
            for (name in listOf("mean", "std")) {
                val values = data[name]
                if (values !is List<*> || values.size != 3 || !values.all(::isNumber)) {
                    throw DeepSquareError("'$name' must be 3 numbers (R, G, B), got ${Json.pyRepr(values)}")
                }
            }
            val std = (data["std"] as List<*>).map(::toDouble)
            if (std.any { it <= 0 }) throw DeepSquareError("'std' must be positive, got ${Json.pyRepr(data["std"])}")
            val formats = if ("formats" in data.keys) data["formats"] else emptyMap<String, Any?>()
            if (formats !is Map<*, *>) {
                throw DeepSquareError("'formats' must be an object, got ${Json.pyType(formats)}")
            }
            val entries = LinkedHashMap<String, FormatEntry>()
            for ((key, entry) in formats) {
                val name = key as String
                entries[name] = formatEntry(name, entry)
            }
            val provenance = data["provenance"]
            return BundleMeta(
                arch = data["arch"] as String,
                variant = data["variant"] as String,
                classes = classes.map { it as String },
                inputSize = size.toInt(),
                mean = (data["mean"] as List<*>).map(::toDouble),
                std = std,
                pixelRange = (data["pixel_range"] as String?) ?: "0-1",
                formats = entries,
                provenance = (provenance as? Map<*, *>)?.entries?.associate { (k, v) -> k as String to v }.orEmpty(),
            )
        }

        private fun formatEntry(name: String, entry: Any?): FormatEntry {
            fun malformed(why: String): Nothing = throw DeepSquareError("format entry '$name' is malformed: $why")
            if (entry !is Map<*, *>) malformed("expected an object, got ${Json.pyType(entry)}")
            val unexpected = entry.keys.map { it as String }.filter { it !in FORMAT_FIELDS }
            if (unexpected.isNotEmpty()) malformed("unexpected field(s) ${unexpected.joinToString(", ")}")
            val lacking = listOf("file", "layout", "input_name", "output_name").filter { it !in entry.keys }
            if (lacking.isNotEmpty()) malformed("missing field(s) ${lacking.joinToString(", ")}")
            val file = entry["file"]
            if (file !is String || file.isEmpty()) throw DeepSquareError("format entry '$name' has no file name")
            for (field in listOf("layout", "input_name", "output_name", "precision")) {
                if (field in entry.keys && entry[field] !is String) {
                    malformed("'$field' must be a string, got ${Json.pyRepr(entry[field])}")
                }
            }
            val extra = entry["extra"]
            if ("extra" in entry.keys && extra !is Map<*, *>) malformed("'extra' must be an object")
            return FormatEntry(
                file = file,
                layout = entry["layout"] as String,
                inputName = entry["input_name"] as String,
                outputName = entry["output_name"] as String,
                precision = (entry["precision"] as String?) ?: "fp32",
                extra = (extra as Map<*, *>?)?.entries?.associate { (k, v) -> k as String to v } ?: emptyMap(),
            )
        }
    }
}
