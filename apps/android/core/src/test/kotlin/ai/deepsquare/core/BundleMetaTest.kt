package ai.deepsquare.core

import org.junit.Assert.assertEquals
import org.junit.Test

/** model.json checks, with runtime/bundle.py's wording. */
class BundleMetaTest {
    private val good: String get() = Golden.file("model.json").readText()

    private fun edited(change: (MutableMap<String, Any?>) -> Unit): String {
        @Suppress("UNCHECKED_CAST")
        val data = LinkedHashMap(Json.parse(good) as Map<String, Any?>)
        change(data)
        return Json.write(data)
    }

    @Test
    fun parsesGoldenModelJson() {
        val meta = BundleMeta.parse(good)
        assertEquals("shufflenetv2_x0_5", meta.arch)
        assertEquals(64, meta.inputSize)
        assertEquals("0-1", meta.pixelRange)
        assertEquals("model.tflite", meta.formats.getValue("tflite").file)
        assertEquals("input", meta.formats.getValue("tflite").inputName)
        assertEquals("logits", meta.formats.getValue("tflite").outputName)
        // Written and read back: the same.
        assertEquals(meta, BundleMeta.fromJson(Json.parse(Json.write(meta.toMap()))))
    }

    @Test
    fun corruptJsonIsAClearError() {
        expectError("model.json is not valid JSON", "re-export") { BundleMeta.parse(good.substring(0, good.length / 2)) }
        expectError("is not valid JSON") { BundleMeta.parse("") }
        expectError("is not valid JSON") { BundleMeta.parse("{\"a\": 1,}") }
        expectError("is not valid JSON", "not UTF-8") { BundleMeta.parse(byteArrayOf(0x7b, 0xff.toByte(), 0x7d)) }
        expectError("is not valid JSON") { BundleMeta.parse("[".repeat(100_000)) }
    }

    @Test
    fun wrongFieldsNameTheField() {
        expectError("expected a JSON object, found list") { BundleMeta.parse("[1, 2]") }
        expectError("unknown bundle schema 'deepsquare-bundle/0'; expected deepsquare-bundle/1") {
            BundleMeta.parse(edited { it["schema"] = "deepsquare-bundle/0" })
        }
        expectError("unknown bundle schema None") { BundleMeta.parse(edited { it.remove("schema") }) }
        expectError("missing field(s) classes, input_size") {
            BundleMeta.parse(edited { it.remove("input_size"); it.remove("classes") })
        }
        expectError("'arch' must be a string, got 3") { BundleMeta.parse(edited { it["arch"] = 3L }) }
        expectError("'classes' must be a non-empty list of strings, got []") {
            BundleMeta.parse(edited { it["classes"] = emptyList<String>() })
        }
        expectError("'classes' must be a non-empty list of strings") {
            BundleMeta.parse(edited { it["classes"] = listOf("a", 1L) })
        }
        expectError("'input_size' must be a whole number of pixels in 8..4096, got 64.0") {
            BundleMeta.parse(edited { it["input_size"] = 64.0 })
        }
        expectError("got 4") { BundleMeta.parse(edited { it["input_size"] = 4L }) }
        expectError("got 5000") { BundleMeta.parse(edited { it["input_size"] = 5000L }) }
        expectError("got True") { BundleMeta.parse(edited { it["input_size"] = true }) }
        expectError("got '64'") { BundleMeta.parse(edited { it["input_size"] = "64" }) }
        expectError("'mean' must be 3 numbers (R, G, B), got [0.5, 0.5]") {
            BundleMeta.parse(edited { it["mean"] = listOf(0.5, 0.5) })
        }
        expectError("'std' must be 3 numbers") { BundleMeta.parse(edited { it["std"] = listOf(0.5, "x", 0.5) }) }
        expectError("'std' must be positive, got [0.2, 0.0, 0.2]") {
            BundleMeta.parse(edited { it["std"] = listOf(0.2, 0.0, 0.2) })
        }
        expectError("'formats' must be an object, got list") { BundleMeta.parse(edited { it["formats"] = listOf(1L) }) }
        expectError("format entry 'tflite' is malformed") {
            BundleMeta.parse(edited { it["formats"] = mapOf("tflite" to mapOf("file" to "model.tflite")) })
        }
        expectError("format entry 'tflite' has no file name") {
            BundleMeta.parse(
                edited {
                    it["formats"] =
                        mapOf("tflite" to mapOf("file" to "", "layout" to "NHWC", "input_name" to "i", "output_name" to "o"))
                },
            )
        }
        // The prefix names the file, as load_bundle does.
        expectError("assets/model.json is not a valid bundle sidecar: missing field(s) std") {
            BundleMeta.parse(edited { it.remove("std") }, "assets/model.json")
        }
    }
}
