package ai.deepsquare.core

import java.io.File
import kotlin.system.exitProcess

/**
 * `run-tests.sh --self-check BUNDLE OUTPUTS.json`: the core's self-check on outputs a real runtime produced
 * (tests/test_android_core.py runs the bundle's .tflite in Python LiteRT on the input RealBundleTest made
 * from golden.png, since the JVM cannot run LiteRT). Prints the message the app shows; exit 1 when it fails, 2 when the bundle is refused.
 */
object SelfCheckMain {
    @JvmStatic
    fun main(args: Array<String>) {
        try {
            check(args)
        } catch (e: DeepSquareError) {
            println(e.message)
            exitProcess(2)
        }
    }

    private fun check(args: Array<String>) {
        val bundle = File(args[0])
        val meta = BundleMeta.parse(File(bundle, "model.json").readBytes(), "model.json")
        val entry = meta.format("tflite")
        val golden = Golden.parse(File(bundle, meta.golden ?: "golden.json").readText(), meta)
        val outputs = StrictJson.decode(File(args[1]).readText(), DoubleArray::class.java)
        val result = SelfCheck.compare(FloatArray(outputs.size) { outputs[it].toFloat() }, meta, entry, golden.expectation("tflite"))
        println(result.message)
        exitProcess(if (result.passed) 0 else 1)
    }
}
