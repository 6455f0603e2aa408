package ai.deepsquare.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Test

/** What the app hands the model: the pixels themselves (uint8 bundles) or normalized floats (float bundles). */
class ModelInputTest {
    private val meta = Fixtures.meta
    private val rgb = ByteArray(8 * 8 * 3) { (it * 37).toByte() }

    @Test
    fun uint8EntriesGetThePixelsUntouched() {
        val input = ModelInput.of(rgb, meta, meta.format("tflite"))
        assertTrue(input is ModelInput.Pixels)
        assertSame(rgb, (input as ModelInput.Pixels).bytes) // no copy, no normalization
    }

    @Test
    fun floatEntriesAreNormalizedInFloat32InTheirLayout() {
        val nhwc = meta.format("tflite").copy(inputKind = InputKind.FLOAT32)
        val floats = (ModelInput.of(rgb, meta, nhwc) as ModelInput.Floats).values
        for (i in rgb.indices) {
            val expected = ((rgb[i].toInt() and 0xff).toFloat() / 255f - 0.5f) / 0.25f
            assertEquals(expected.toRawBits(), floats[i].toRawBits())
        }
        val nchw = nhwc.copy(layout = "NCHW")
        val planar = (ModelInput.of(rgb, meta, nchw) as ModelInput.Floats).values
        for (p in 0 until 64) for (c in 0 until 3) assertEquals(floats[p * 3 + c], planar[c * 64 + p], 0f)
    }

    @Test
    fun wrongSizesAndKindsAreClearErrors() {
        expectError("the image has 12 RGB bytes; the model takes 8 x 8 pixels = 192 bytes") {
            ModelInput.of(ByteArray(12), meta, meta.format("tflite"))
        }
        expectError("model.mlpackage takes a picture (Core ML ImageType)") { ModelInput.of(rgb, meta, meta.format("coreml")) }
        expectError("expected 4 pixels for 2x2, got 3") { ModelInput.argbToRgb(IntArray(3), 2, 2) }
        assertArrayEquals(byteArrayOf(0x12, 0x34, 0x56), ModelInput.argbToRgb(intArrayOf(0x7f123456), 1, 1))
    }

    @Test
    fun tensorShapesFromTheRuntimeAreCheckedAgainstModelJson() {
        val tflite = meta.format("tflite")
        ModelShapes.checkInput(listOf(1, 8, 8, 3), meta, tflite)
        ModelShapes.checkOutput(listOf(1, 10), meta, tflite)
        expectError("model.tflite takes an input of shape [1, 3, 8, 8], but model.json says uint8 [1, 8, 8, 3]",
            "different exports") { ModelShapes.checkInput(listOf(1, 3, 8, 8), meta, tflite) }
        expectError("model.tflite returns an output of shape [1, 7], but model.json lists 10 classes") {
            ModelShapes.checkOutput(listOf(1, 7), meta, tflite)
        }
        expectError("returned 7 logits for 10 classes") { Classify.topK(FloatArray(7), meta.classes) }
    }

    @Test
    fun topKBreaksTiesByLowerIndex() {
        val top = Classify.topK(doubleArrayOf(1.0, 3.0, 3.0, 0.5, 3.0), listOf("a", "b", "c", "d", "e"), 4)
        assertEquals(listOf(1, 2, 4, 0), top.map { it.index })
        assertArrayEquals(doubleArrayOf(0.5, 0.5), Classify.softmax(doubleArrayOf(1000.0, 1000.0)), 0.0)
    }
}
