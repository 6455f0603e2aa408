package ai.deepsquare.core

import com.google.gson.JsonObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * A bundle `deepsquare export` really wrote (-Dbundle.dir, given by tests/test_android_core.py; skipped without).
 * The core reads its model.json and golden.json and turns golden.png into the tflite model's input; with
 * -Dreport.out it writes what it read and that input, which the Python test runs through LiteRT and then
 * hands back to `run-tests.sh --self-check` (the JVM cannot run LiteRT).
 */
class RealBundleTest {
    private val dir = System.getProperty("bundle.dir").orEmpty()

    @Test
    fun readsTheExportedBundleAndPreparesTheGoldenInput() {
        assumeTrue("no -Dbundle.dir given", dir.isNotEmpty())
        val bundle = File(dir)
        val meta = BundleMeta.parse(File(bundle, "model.json").readBytes(), "model.json")
        val entry = meta.format("tflite")
        val report = JsonObject()
        report.addProperty("schema", meta.schema)
        report.addProperty("id", meta.id)
        report.add("classes", StrictJson.gson.toJsonTree(meta.classes))
        report.addProperty("input_size", meta.inputSize)
        report.add("mean", StrictJson.gson.toJsonTree(meta.mean))
        report.add("std", StrictJson.gson.toJsonTree(meta.std))
        report.addProperty("input", meta.input)
        report.addProperty("tflite_input_dtype", entry.inputKind.json)
        report.addProperty("tflite_outputs", entry.outputs)
        val out = System.getProperty("report.out").orEmpty()
        val goldenName = meta.golden
        if (goldenName != null) {
            val golden = Golden.parse(File(bundle, goldenName).readText(), meta, goldenName)
            val (rgb, w, h) = Png.read(File(bundle, golden.image))
            val input = SelfCheck.input(rgb, w, h, meta, entry)
            val expected = golden.expectation("tflite")
            assertEquals(meta.classes.size, expected.values.size)
            report.addProperty("golden_label", golden.label)
            report.addProperty("golden_tolerance", expected.tolerance)
            if (out.isNotEmpty()) File(out, "tflite_input.bin").writeBytes(bytesOf(input))
            println("RealBundleTest: ${meta.schema}, tflite input ${entry.inputKind.json}, golden ${golden.image} ${w}x$h")
        } else {
            println("RealBundleTest: ${meta.schema}, no golden file in this bundle")
        }
        if (out.isNotEmpty()) File(out, "read.json").writeText(StrictJson.write(report))
    }

    /**
     * apps/testdata/bundle (-Dtestdata.bundle; skipped when absent): the contract files of a real digits bundle as
     * `deepsquare export` wrote them, read with the app's decoders: model.json, golden.json and golden.png.
     */
    @Test
    fun readsTheCommittedContractFiles() {
        val folder = File(System.getProperty("testdata.bundle").orEmpty())
        assumeTrue("no apps/testdata/bundle", File(folder, "model.json").isFile)
        val meta = BundleMeta.parse(File(folder, "model.json").readBytes(), "apps/testdata/bundle/model.json")
        assertEquals(BundleMeta.SCHEMA_V2, meta.schema)
        val entry = meta.format("tflite")
        val golden = Golden.parse(File(folder, meta.golden!!).readText(), meta)
        val (rgb, w, h) = Png.read(File(folder, golden.image))
        val input = SelfCheck.input(rgb, w, h, meta, entry)
        if (entry.inputKind == InputKind.UINT8) assertEquals(rgb.toList(), (input as ModelInput.Pixels).bytes.toList())
        // The committed golden values against themselves: the comparison path, end to end, passes at 0.
        val expected = golden.expectation("tflite")
        val same = SelfCheck.compare(FloatArray(expected.values.size) { expected.values[it].toFloat() }, meta, entry, expected)
        assertTrue(same.message, same.maxDiff < 1e-6 && same.passed)
        println("RealBundleTest: apps/testdata/bundle: ${meta.classes.size} classes, ${entry.inputKind.json} input, golden \"${golden.label}\" ${w}x$h")
    }

    /** The input as the model's tensor bytes: uint8 as they are, float32 little-endian. */
    private fun bytesOf(input: ModelInput): ByteArray =
        when (input) {
            is ModelInput.Pixels -> input.bytes
            is ModelInput.Floats ->
                ByteBuffer.allocate(input.values.size * 4).order(ByteOrder.LITTLE_ENDIAN)
                    .also { b -> input.values.forEach { b.putFloat(it) } }.array()
        }
}
