package ai.deepsquare.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import java.io.File
import kotlin.random.Random

/** Reading the bundle JSON and labels embedded in a .tflite (Model.metadata). */
class TfliteMetadataTest {
    private val bundleJson: ByteArray get() = Golden.file("model.json").readBytes()
    private val labels: ByteArray get() = Golden.file("labels.txt").readBytes()

    private fun handMade(vararg extra: Pair<String, ByteArray>) =
        MiniTflite.build(
            listOf("deepsquare_bundle" to bundleJson, "labels.txt" to labels) + extra,
            inputShape = intArrayOf(1, 64, 64, 3),
            outputShape = intArrayOf(1, 10),
        )

    @Test
    fun readsHandBuiltFlatbuffer() {
        val bytes = handMade("min_runtime_version" to "1.5.0".toByteArray())
        val model = TfliteModel.read(bytes)
        assertEquals(listOf("deepsquare_bundle", "labels.txt", "min_runtime_version"), model.metadata.keys.toList())
        assertArrayEquals(bundleJson, model.metadata["deepsquare_bundle"])
        val embedded = EmbeddedBundle.read(bytes)
        assertEquals(Golden.meta, embedded.meta)
        assertEquals(Golden.meta.classes, embedded.labels)
        assertArrayEquals(intArrayOf(1, 64, 64, 3), embedded.inputShape)
    }

    /** The real exported model the Python test passes in (-Dtflite.file); skipped when absent. */
    @Test
    fun readsRealExportedTflite() {
        val path = System.getProperty("tflite.file").orEmpty()
        assumeTrue("no -Dtflite.file given", path.isNotEmpty())
        val file = File(path)
        val bytes = file.readBytes()
        val embedded = EmbeddedBundle.read(bytes, file.name)
        val sidecar = File(file.parentFile, "model.json")
        if (sidecar.isFile) assertEquals(BundleMeta.parse(sidecar.readText()), embedded.meta)
        assertEquals(embedded.meta.classes, embedded.labels)
        val s = embedded.meta.inputSize
        assertArrayEquals(intArrayOf(1, s, s, 3), embedded.inputShape)
        assertEquals(embedded.meta.classes.size, embedded.outputShape!!.last())
        val out = System.getProperty("metadata.out").orEmpty()
        if (out.isNotEmpty()) {
            val read =
                linkedMapOf(
                    "metadata_names" to TfliteModel.read(bytes).metadata.keys.toList(),
                    "bundle_json_text" to embedded.bundleJson,
                    "bundle" to embedded.meta.toMap(),
                    "labels" to embedded.labels,
                    "input_shape" to embedded.inputShape!!.toList(),
                    "output_shape" to embedded.outputShape!!.toList(),
                )
            File(out).writeText(Json.write(read) + "\n")
        }
        // Truncations of the real file: a clear error, never a crash. The reader checks the tables it
        // walks and every buffer's extent (the weights), so a file cut inside its weights is refused;
        // the last few KB (tensor names, signatures, which the reader does not walk) are left to LiteRT.
        val step = maxOf(1, bytes.size / 200)
        var refused = 0
        for (n in 0 until bytes.size step step) {
            try {
                EmbeddedBundle.read(bytes.copyOf(n), file.name)
            } catch (e: DeepSquareError) {
                assertTrue(e.message!!.contains(file.name))
                refused++
            }
        }
        assertTrue("only $refused truncations refused", refused >= 180)
        println("TfliteMetadataTest: ${file.name}: $refused of ${(bytes.size + step - 1) / step} truncations refused")
    }

    @Test
    fun noMetadataIsAClearError() {
        val bare = MiniTflite.build(emptyList(), withMetadataField = false)
        assertTrue(TfliteModel.read(bare).metadata.isEmpty())
        expectError("model.tflite has no 'deepsquare_bundle' metadata (it has no metadata at all)", "model.json") {
            EmbeddedBundle.read(bare)
        }
        val other = MiniTflite.build(listOf("min_runtime_version" to "1.5.0".toByteArray()))
        expectError("has no 'deepsquare_bundle' metadata (it has 'min_runtime_version')") { EmbeddedBundle.read(other) }
    }

    @Test
    fun notATfliteIsAClearError() {
        expectError("too short") { TfliteModel.read(ByteArray(3)) }
        expectError("is not a TFLite model: file identifier 'ONNX', expected 'TFL3'") {
            TfliteModel.read(MiniTflite.build(emptyList(), identifier = "ONNX"))
        }
        expectError("not a TFLite model") { TfliteModel.read("{\"schema\": \"deepsquare-bundle/1\"}".toByteArray()) }
    }

    @Test
    fun corruptMetadataIsAClearError() {
        val broken = MiniTflite.build(listOf("deepsquare_bundle" to "{\"arch\": ".toByteArray()))
        expectError("metadata 'deepsquare_bundle' is not valid JSON") { EmbeddedBundle.read(broken) }
        val wrong = MiniTflite.build(listOf("deepsquare_bundle" to "{\"schema\": \"x\"}".toByteArray()))
        expectError("is not a valid bundle sidecar: unknown bundle schema 'x'") { EmbeddedBundle.read(wrong) }
        val badLabels = MiniTflite.build(listOf("deepsquare_bundle" to bundleJson, "labels.txt" to "a\nb".toByteArray()))
        expectError("labels.txt (2 lines) disagrees with the bundle's 10 classes") { EmbeddedBundle.read(badLabels) }
        val wrongInput =
            MiniTflite.build(
                listOf("deepsquare_bundle" to bundleJson),
                inputShape = intArrayOf(1, 3, 64, 64),
                outputShape = intArrayOf(1, 10),
            )
        expectError("the model input is [1, 3, 64, 64], but the bundle says input_size 64") {
            EmbeddedBundle.read(wrongInput)
        }
    }

    @Test
    fun truncatedOrScrambledBytesNeverCrash() {
        val bytes = handMade()
        for (n in 0 until bytes.size) expectError("model.tflite") { EmbeddedBundle.read(bytes.copyOf(n)) }
        val random = Random(7)
        var readable = 0
        repeat(3000) {
            val mutated = bytes.copyOf()
            repeat(1 + random.nextInt(4)) { mutated[8 + random.nextInt(mutated.size - 8)] = random.nextInt(256).toByte() }
            try {
                EmbeddedBundle.read(mutated)
                readable++
            } catch (e: DeepSquareError) {
                assertTrue(e.message!!.isNotEmpty())
            }
        }
        println("TfliteMetadataTest: 3000 scrambled files, $readable still readable, the rest clear errors")
    }
}
