package ai.deepsquare.core

import com.google.gson.JsonArray
import com.google.gson.JsonObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.file.Files
import kotlin.math.sin

/**
 * The golden self-check, end to end but for LiteRT (which the JVM cannot run): golden.png written and decoded
 * with ImageIO, turned into the model input by the core, run through a stand-in model that normalizes inside
 * like a uint8 graph does, and compared with golden.json values computed on the original pixels.
 */
class SelfCheckTest {
    private val meta = Fixtures.meta
    private val entry = meta.format("tflite")
    private val s = meta.inputSize
    private val pixels = ByteArray(s * s * 3) { ((it * 53 + 7) % 256).toByte() }

    /** A uint8 "graph": /255, -mean, /std inside, then a fixed linear layer; logits in float32. */
    private fun standInModel(input: ModelInput): FloatArray {
        val values =
            when (input) {
                is ModelInput.Pixels -> FloatArray(input.bytes.size) { ((input.bytes[it].toInt() and 0xff) / 255f - 0.5f) / 0.25f }
                is ModelInput.Floats -> input.values // what a float graph would take as it is
            }
        return FloatArray(meta.classes.size) { k -> values.indices.sumOf { i -> values[i] * sin(k + i * 0.01) }.toFloat() / values.size }
    }

    /** What the export writes: the model's logits on the original pixels (float64 here, so not bit-equal). */
    private fun exportedLogits(): List<Double> =
        List(meta.classes.size) { k ->
            pixels.indices.sumOf { i -> ((pixels[i].toInt() and 0xff) / 255.0 - 0.5) / 0.25 * sin(k + i * 0.01) } / pixels.size
        }

    private fun goldenJson(values: List<Double>, outputs: String = "logits", tolerance: Double = 1e-4): String {
        val format = JsonObject().apply {
            addProperty("outputs", outputs)
            add("values", JsonArray().apply { values.forEach(::add) })
            add("top5", JsonArray())
            addProperty("tolerance", tolerance)
            addProperty("measured", true)
        }
        return StrictJson.write(
            JsonObject().apply {
                addProperty("schema", "deepsquare-golden/1")
                addProperty("image", "golden.png")
                addProperty("label", "3")
                add("reference", JsonObject())
                add("formats", JsonObject().apply { add("tflite", format) })
            },
        )
    }

    private fun goldenPng(rgb: ByteArray = pixels, w: Int = s, h: Int = s): File =
        Files.createTempFile("golden", ".png").toFile().also { Png.write(it, rgb, w, h); it.deleteOnExit() }

    private fun run(goldenText: String, png: File = goldenPng()): SelfCheckResult {
        val golden = Golden.parse(goldenText, meta)
        val (rgb, w, h) = Png.read(png)
        val input = SelfCheck.input(rgb, w, h, meta, entry)
        return SelfCheck.compare(standInModel(input), meta, entry, golden.expectation("tflite"))
    }

    @Test
    fun passesWhenTheAppFeedsTheModelWhatTheExportDid() {
        val result = run(goldenJson(exportedLogits()))
        assertTrue(result.message, result.passed)
        assertTrue(result.message, result.message.startsWith("self-check passed (max |diff| "))
        assertTrue(result.maxDiff < 1e-5)
        println("SelfCheckTest: ${result.message}")
        // The golden values as probabilities: the app's logits go through softmax first.
        val probs = Classify.softmax(exportedLogits().toDoubleArray()).toList()
        assertTrue(run(goldenJson(probs, outputs = "probabilities", tolerance = 1e-5)).passed)
    }

    @Test
    fun failsClearlyOnAnAlteredGoldenFile() {
        val altered = exportedLogits().toMutableList().also { it[5] += 0.5 }
        val result = run(goldenJson(altered))
        assertFalse(result.passed)
        assertEquals("5", result.worstClass)
        assertTrue(result.message, result.message.startsWith("self-check FAILED: "))
        assertTrue(result.message, "at class \"5\"" in result.message && "cannot be trusted" in result.message)
        println("SelfCheckTest: altered golden.json -> ${result.message}")
    }

    @Test
    fun failsWhenTheAppPreparesThePixelsDifferently() {
        val golden = goldenJson(exportedLogits())
        // Channels swapped (BGR), as a decoder handing over BGRA would.
        val bgr = ByteArray(pixels.size) { pixels[it - it % 3 + (2 - it % 3)] }
        assertFalse(run(golden, goldenPng(bgr)).passed)
        // Cropped or resized one pixel off: the image shifted by a column.
        val shifted = ByteArray(pixels.size) { pixels[(it + 3) % pixels.size] }
        assertFalse(run(golden, goldenPng(shifted)).passed)
        // A float bundle's normalization done on a uint8 model's pixels: the input the app built is not the pixels.
        val normalized = SelfCheck.input(pixels, s, s, meta, entry.copy(inputKind = InputKind.FLOAT32)) as ModelInput.Floats
        val asBytes = ByteArray(pixels.size) { normalized.values[it].toInt().toByte() }
        val result = SelfCheck.compare(standInModel(ModelInput.Pixels(asBytes)), meta, entry, Golden.parse(golden, meta).expectation("tflite"))
        assertFalse(result.message, result.passed)
    }

    @Test
    fun aWrongGoldenFileIsAClearError() {
        expectError("the golden image is 9x8, the model's input is 8x8") {
            run(goldenJson(exportedLogits()), goldenPng(ByteArray(9 * 8 * 3), 9, 8))
        }
        expectError("golden.json: format \"tflite\": \"values\" must be 10 numbers") { run(goldenJson(listOf(1.0, 2.0))) }
        expectError("golden.json: format \"tflite\": tolerance 0.0 is not > 0") { run(goldenJson(exportedLogits(), tolerance = 0.0)) }
        expectError("golden.json: label \"cat\" is not one of model.json's classes") {
            Golden.parse(goldenJson(exportedLogits()).replace("\"label\": \"3\"", "\"label\": \"cat\""), meta)
        }
        expectError("golden.json: schema") { Golden.parse(goldenJson(exportedLogits()).replace("golden/1", "golden/9"), meta) }
        expectError("golden.json has no expected output for onnx") { Golden.parse(goldenJson(exportedLogits()), meta).expectation("onnx") }
        expectError("golden.json cannot be read: field formats.tflite.tolerance must be a number") {
            Golden.parse(goldenJson(exportedLogits()).replace("\"tolerance\": 1.0E-4", "\"tolerance\": \"small\""), meta)
        }
        val probabilityModel = entry.copy(outputs = "probabilities")
        expectError("the model returns probabilities but golden.json holds logits") {
            SelfCheck.compare(FloatArray(10), meta, probabilityModel, Golden.parse(goldenJson(exportedLogits()), meta).expectation("tflite"))
        }
    }
}
