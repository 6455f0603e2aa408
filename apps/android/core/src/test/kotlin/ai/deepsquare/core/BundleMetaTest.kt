package ai.deepsquare.core

import com.google.gson.JsonArray
import com.google.gson.JsonNull
import com.google.gson.JsonPrimitive
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test

/** model.json through Gson and the core's checks: a wrong field is refused with a message naming it. */
class BundleMetaTest {
    @Test
    fun readsAVersion2Bundle() {
        val meta = Fixtures.meta
        assertEquals("deepsquare-bundle/2", meta.schema)
        assertEquals("0f8fad5b-d9cb-469f-a165-70867728950e", meta.id)
        assertEquals(Fixtures.CLASSES, meta.classes)
        assertEquals(8, meta.inputSize)
        assertEquals("uint8", meta.input)
        val tflite = meta.format("tflite")
        assertEquals(InputKind.UINT8, tflite.inputKind)
        assertEquals("logits", tflite.outputs)
        assertEquals(InputKind.IMAGE, meta.format("coreml").inputKind)
        assertEquals("golden.json", meta.golden)
        expectError("this bundle has no onnx model (it has tflite, coreml)", "--to onnx") { meta.format("onnx") }
    }

    @Test
    fun readsAVersion1BundleAsFloatWithoutGolden() {
        val v1 =
            Fixtures.edited {
                it.addProperty("schema", "deepsquare-bundle/1")
                listOf("id", "input", "golden", "samples").forEach(it::remove)
                val tflite = it.getAsJsonObject("formats").getAsJsonObject("tflite")
                tflite.remove("input_dtype")
                tflite.addProperty("layout", "NHWC")
                it.getAsJsonObject("formats").getAsJsonObject("coreml").remove("input_dtype")
            }
        val meta = BundleMeta.parse(v1)
        assertEquals(InputKind.FLOAT32, meta.format("tflite").inputKind)
        assertEquals(InputKind.IMAGE, meta.format("coreml").inputKind)
        assertEquals("float", meta.input)
        assertNull(meta.golden)
        assertNull(meta.id)
    }

    @Test
    fun notJsonOrNotStrictJsonIsRefused() {
        val good = Fixtures.text(Fixtures.modelJson())
        expectError("assets/model.json cannot be read: not valid JSON", "re-export") {
            BundleMeta.parse(good.substring(0, good.length / 2), "assets/model.json")
        }
        expectError("cannot be read: not valid JSON") { BundleMeta.parse("") }
        expectError("cannot be read: the file holds null") { BundleMeta.parse("null") }
        expectError("not valid JSON") { BundleMeta.parse("{\"schema\": \"deepsquare-bundle/2\",}") }
        expectError("not valid JSON") { BundleMeta.parse("{\"input_size\": NaN}") }
        expectError("not valid JSON") { BundleMeta.parse("{'schema': 'deepsquare-bundle/2'}") }
        expectError("not valid JSON") { BundleMeta.parse("// a comment\n{}") }
        expectError("text after the JSON value") { BundleMeta.parse("$good {}") }
        expectError("not UTF-8 text") { BundleMeta.parse(byteArrayOf(0x7b, 0xff.toByte(), 0x7d)) }
        expectError("cannot be read") { BundleMeta.parse("[".repeat(100_000)) }
        expectError("cannot be read: the file must be an object, but it is a list") { BundleMeta.parse("[1, 2]") }
        expectError("cannot be read: field formats must be an object, but it is a list") {
            BundleMeta.parse(Fixtures.edited { it.add("formats", JsonArray()) })
        }
        expectError("field formats.tflite.extra must be an object, but it is text") {
            BundleMeta.parse(Fixtures.edited { it.getAsJsonObject("formats").getAsJsonObject("tflite").addProperty("extra", "x") })
        }
    }

    @Test
    fun aFieldOfTheWrongKindIsNamedByItsPath() {
        expectError("field input_size must be a whole number, but it is the text \"64\"") {
            BundleMeta.parse(Fixtures.edited { it.addProperty("input_size", "64") })
        }
        expectError("field input_size must be a whole number, but it is the number 64.0") {
            BundleMeta.parse(Fixtures.edited { it.addProperty("input_size", 64.0) })
        }
        expectError("field input_size must be a whole number, but it is the value true") {
            BundleMeta.parse(Fixtures.edited { it.addProperty("input_size", true) })
        }
        expectError("field arch must be text, but it is the number 3") {
            BundleMeta.parse(Fixtures.edited { it.addProperty("arch", 3) })
        }
        expectError("field std[1] must be a number, but it is the text \"x\"") {
            BundleMeta.parse(Fixtures.edited { it.add("std", JsonArray().apply { add(0.5); add("x"); add(0.5) }) })
        }
        expectError("field classes[1] must be text, but it is the number 1") {
            BundleMeta.parse(Fixtures.edited { it.add("classes", JsonArray().apply { add("a"); add(1) }) })
        }
        expectError("field formats.tflite.file must be text, but it is a list") {
            BundleMeta.parse(Fixtures.edited { it.getAsJsonObject("formats").getAsJsonObject("tflite").add("file", JsonArray()) })
        }
    }

    @Test
    fun eachWrongValueHasItsOwnMessage() {
        fun refused(change: (com.google.gson.JsonObject) -> Unit, vararg parts: String) =
            expectError("model.json: ", *parts) { BundleMeta.parse(Fixtures.edited(change)) }
        refused({ it.remove("schema") }, "no \"schema\" field")
        refused({ it.addProperty("schema", "deepsquare-bundle/3") }, "schema \"deepsquare-bundle/3\" is not one this app reads")
        refused({ it.addProperty("id", "1234") }, "\"id\" must be the bundle's UUID")
        refused({ it.remove("arch") }, "no \"arch\"")
        refused({ it.remove("classes") }, "no \"classes\"")
        refused({ it.add("classes", JsonArray()) }, "\"classes\" is empty")
        refused({ it.add("classes", JsonArray().apply { add("a"); add("") }) }, "empty or null class name")
        refused({ it.add("classes", JsonArray().apply { add("a"); add("b"); add("a") }) }, "class \"a\" appears 2 times")
        refused({ it.remove("input_size") }, "no \"input_size\"")
        refused({ it.addProperty("input_size", 4) }, "\"input_size\" is 4 pixels; it must be 8 to 4096")
        refused({ it.addProperty("input_size", 5000) }, "it must be 8 to 4096")
        refused({ it.add("mean", JsonArray().apply { add(0.5); add(0.5) }) }, "\"mean\" must be three numbers (R, G, B)")
        refused({ it.remove("std") }, "no \"std\"")
        refused({ it.add("std", JsonArray().apply { add(0.2); add(0.0); add(0.2) }) }, "\"std\" must be three positive numbers")
        refused({ it.add("std", JsonArray().apply { add(0.2); add(JsonNull.INSTANCE); add(0.2) }) }, "\"std\" must be three numbers")
        refused({ it.addProperty("pixel_range", "0-255") }, "pixel_range \"0-255\" is not \"0-1\"")
        refused({ it.addProperty("input", "int8") }, "\"input\" is \"int8\"; it must be \"float\" or \"uint8\"")
        refused({ it.remove("input") }, "no \"input\"")
        refused({ it.add("formats", com.google.gson.JsonObject()) }, "\"formats\" lists no model file")
        refused({ it.add("sha256", com.google.gson.JsonObject().apply { addProperty("model.tflite", "abc") }) },
            "\"sha256\" of model.tflite must be 64 lowercase hex digits")
        refused({ it.addProperty("golden", "../golden.json") }, "\"golden\" must be \"golden.json\" or null")
        fun entry(change: (com.google.gson.JsonObject) -> Unit, vararg parts: String) =
            refused({ change(it.getAsJsonObject("formats").getAsJsonObject("tflite")) }, "format \"tflite\": ", *parts)
        entry({ it.remove("file") }, "no \"file\"")
        entry({ it.addProperty("file", "../model.tflite") }, "must name a file directly inside the bundle")
        entry({ it.addProperty("layout", "HWC") }, "layout \"HWC\" is not one of NCHW, NHWC, image")
        entry({ it.addProperty("input_dtype", "int4") }, "input_dtype \"int4\" is not one of float32, uint8, image")
        entry({ it.remove("input_dtype") }, "no \"input_dtype\"")
        entry({ it.addProperty("layout", "NCHW") }, "a uint8 input must be NHWC pixels, the layout is NCHW")
        entry({ it.addProperty("input_dtype", "image") }, "input_dtype \"image\" does not go with layout \"NHWC\"")
        entry({ it.addProperty("precision", "fp8") }, "precision \"fp8\" is not one of fp32, fp16, int8")
        entry({ it.add("extra", com.google.gson.JsonObject().apply { add("outputs", JsonPrimitive("scores")) }) },
            "extra.outputs is \"scores\"")
        entry({ it.remove("input_name") }, "no \"input_name\"")
        // The source is named as the app names it.
        expectError("assets/model.json: no \"std\"") {
            BundleMeta.parse(Fixtures.edited { it.remove("std") }, "assets/model.json")
        }
    }
}
