package ai.deepsquare.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test

/** Wrong sizes give clear errors; trivial resizes behave like Pillow (same size = copy). */
class PreprocessTest {
    @Test
    fun pixelCountMustMatchTheSize() {
        expectError("expected 12 bytes for 2x2 with 3 channels, got 11") {
            Preprocess.resizeBilinear(ByteArray(11), 2, 2, 8, 8)
        }
        expectError("expected 16 bytes for 2x2 with 4 channels, got 12") {
            Preprocess.resizeBilinear(ByteArray(12), 2, 2, 8, 8, channels = 4)
        }
        expectError("cannot resize a 0x2 image to 8x8") { Preprocess.resizeBilinear(ByteArray(0), 0, 2, 8, 8) }
        expectError("3 or 4 channels") { Preprocess.resizeBilinear(ByteArray(4), 2, 2, 8, 8, channels = 1) }
        expectError("expected 4 pixels for 2x2, got 3") { Preprocess.argbToRgb(IntArray(3), 2, 2) }
        expectError("expected 12 RGB bytes for 2x2, got 13") {
            Preprocess.toTensorNhwc(ByteArray(13), 2, listOf(0.5, 0.5, 0.5), listOf(0.2, 0.2, 0.2))
        }
    }

    @Test
    fun modelInputSizeMismatchIsAClearError() {
        val meta = Golden.meta
        expectError("the input has 12 values, but the model takes [1, 64, 64, 3] = 12288") {
            Preprocess.checkTensor(FloatArray(12), meta)
        }
        expectError("the model input is [1, 32, 32, 3], but the bundle says input_size 64") {
            EmbeddedBundle.checkShapes(meta, intArrayOf(1, 32, 32, 3), intArrayOf(1, 10), "model.tflite")
        }
        expectError("the model output is [1, 7], but the bundle lists 10 classes") {
            EmbeddedBundle.checkShapes(meta, intArrayOf(1, 64, 64, 3), intArrayOf(1, 7), "model.tflite")
        }
        expectError("returned 7 logits for 10 classes") { Classify.topK(FloatArray(7), meta.classes) }
        expectError("no logits") { Classify.softmax(DoubleArray(0)) }
    }

    @Test
    fun sameSizeIsACopyAndUpscaleWorks() {
        val rgb = ByteArray(4 * 4 * 3) { (it * 7).toByte() }
        assertArrayEquals(rgb, Preprocess.resizeBilinear(rgb, 4, 4, 4, 4))
        val flat = ByteArray(3 * 5 * 3) { 200.toByte() }
        val up = Preprocess.resizeBilinear(flat, 3, 5, 17, 9)
        assertEquals(17 * 9 * 3, up.size)
        assertEquals(setOf(200.toByte()), up.toSet())
        assertEquals(intArrayOf(0x12, 0x34, 0x56).toList(), Preprocess.argbToRgb(intArrayOf(0x7f123456), 1, 1).map { it.toInt() })
    }
}
