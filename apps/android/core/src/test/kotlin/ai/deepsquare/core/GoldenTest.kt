package ai.deepsquare.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import kotlin.math.abs

/**
 * The core against the golden files Python made from real photos (apps/testdata/golden):
 * resized pixels and the model input must be identical, the top-5 from the logits the same.
 */
class GoldenTest {
    @Test
    fun goldenBundleMatchesModelJson() {
        val meta = Golden.meta
        val bundle = Golden.bundle
        assertEquals(bundle["arch"], meta.arch)
        assertEquals(bundle["variant"], meta.variant)
        assertEquals(bundle["classes"], meta.classes)
        assertEquals((bundle["input_size"] as Number).toInt(), meta.inputSize)
        assertArrayEquals(numbers(bundle["mean"]), meta.mean.toDoubleArray(), 0.0)
        assertArrayEquals(numbers(bundle["std"]), meta.std.toDoubleArray(), 0.0)
        assertEquals("NHWC", bundle["layout"])
        assertEquals("NHWC", meta.formats.getValue("tflite").layout)
        assertEquals(Golden.file("labels.txt").readText().split("\n"), meta.classes)
    }

    @Test
    fun resizedPixelsEqualPillowExactly() {
        val size = Golden.meta.inputSize
        assertEquals(4, Golden.photos.size)
        for (photo in Golden.photos) {
            val (rgb, w, h) = Golden.decodePng(Golden.file(photo["png"]))
            assertEquals((photo["width"] as Number).toInt(), w)
            assertEquals((photo["height"] as Number).toInt(), h)
            val resized = Preprocess.resizeBilinear(rgb, w, h, size, size)
            val golden = Golden.file(photo["resized_rgb"]).readBytes()
            assertEquals(size * size * 3, golden.size)
            val differing = resized.indices.count { resized[it] != golden[it] }
            assertEquals("${photo["name"]}: bytes differing from Pillow's resize", 0, differing)
        }
    }

    @Test
    fun resizeFromRgbaEqualsRgb() {
        val photo = Golden.photos[1]
        val (rgb, w, h) = Golden.decodePng(Golden.file(photo["png"]))
        val rgba = ByteArray(w * h * 4) { i -> if (i % 4 == 3) 0x7f else rgb[i / 4 * 3 + i % 4] }
        val size = Golden.meta.inputSize
        assertArrayEquals(
            Preprocess.resizeBilinear(rgb, w, h, size, size),
            Preprocess.resizeBilinear(rgba, w, h, size, size, channels = 4),
        )
    }

    /**
     * Tolerance: none. The tensor must be bit-identical (compared as raw float32 bits): Kotlin's
     * Float arithmetic is IEEE-754 single precision, the same correctly rounded operations in the
     * same order as numpy's float32 ((x / 255) - mean) / std, so there is nothing to tolerate.
     */
    @Test
    fun tensorEqualsPythonBitForBit() {
        val meta = Golden.meta
        for (photo in Golden.photos) {
            val (rgb, w, h) = Golden.decodePng(Golden.file(photo["png"]))
            val tensor = Preprocess.imageToTensor(rgb, w, h, meta)
            Preprocess.checkTensor(tensor, meta)
            val golden = Golden.readFloats(Golden.file(photo["tensor_nhwc"]))
            assertEquals(golden.size, tensor.size)
            val differing = tensor.indices.count { tensor[it].toRawBits() != golden[it].toRawBits() }
            assertEquals("${photo["name"]}: float32 values differing from Python's tensor", 0, differing)
            // And from the golden resized bytes directly.
            val fromResized =
                Preprocess.toTensorNhwc(Golden.file(photo["resized_rgb"]).readBytes(), meta.inputSize, meta.mean, meta.std)
            assertTrue(fromResized.indices.all { fromResized[it].toRawBits() == golden[it].toRawBits() })
        }
    }

    @Test
    fun top5AndProbabilitiesFromGoldenLogits() {
        val classes = Golden.meta.classes
        var worst = 0.0
        for (photo in Golden.photos) {
            val logits = numbers(photo["logits"])
            val probs = Classify.softmax(logits)
            val golden = numbers(photo["probabilities"])
            assertEquals(golden.size, probs.size)
            for (i in probs.indices) worst = maxOf(worst, abs(probs[i] - golden[i]))
            assertArrayEquals("${photo["name"]} probabilities", golden, probs, 1e-12)
            val top5 = Classify.topK(logits, classes, 5)
            val expected = photo["top5"] as List<*>
            assertEquals(expected.size, top5.size)
            for ((p, e) in top5.zip(expected)) {
                e as Map<*, *>
                assertEquals("${photo["name"]} index", (e["index"] as Number).toInt(), p.index)
                assertEquals(e["label"], p.label)
                assertEquals((e["probability"] as Number).toDouble(), p.probability, 1e-12)
            }
        }
        println("GoldenTest: max |probability - golden| = $worst (asserted <= 1e-12)")
    }

    @Test
    fun topKBreaksTiesByLowerIndex() {
        val top = Classify.topK(doubleArrayOf(1.0, 3.0, 3.0, 0.5, 3.0), listOf("a", "b", "c", "d", "e"), 4)
        assertEquals(listOf(1, 2, 4, 0), top.map { it.index })
        assertEquals(2, Classify.topK(doubleArrayOf(0.0, 1.0), listOf("a", "b"), 5).size)
        val probs = Classify.softmax(doubleArrayOf(1000.0, 1000.0))
        assertArrayEquals(doubleArrayOf(0.5, 0.5), probs, 0.0)
    }
}
