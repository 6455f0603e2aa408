package ai.deepsquare.android

import ai.deepsquare.core.BundleMeta
import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.Preprocess
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.Closeable
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** How to run the model: CPU (XNNPACK) with a thread count, or the GPU delegate. */
data class RunSettings(val threads: Int, val useGpu: Boolean) {
    val delegate: String get() = if (useGpu) "gpu" else "xnnpack"
}

/**
 * A LiteRT interpreter for the bundle's model: input [1, S, S, 3] float32 NHWC, output [1, C] logits.
 * [initMs] is the time it took to create the interpreter (and the delegate), for the record.
 */
class Classifier private constructor(
    val meta: BundleMeta,
    val settings: RunSettings,
    private val interpreter: Interpreter,
    private val gpu: GpuDelegate?,
    val initMs: Double,
) : Closeable {
    private val size = meta.inputSize
    private val input: ByteBuffer = ByteBuffer.allocateDirect(size * size * 3 * 4).order(ByteOrder.nativeOrder())
    private val output = Array(1) { FloatArray(meta.classes.size) }

    /** Logits for one float32 NHWC tensor (as Preprocess.imageToTensor makes it). */
    fun logits(tensor: FloatArray): FloatArray {
        Preprocess.checkTensor(tensor, meta)
        input.rewind()
        input.asFloatBuffer().put(tensor)
        input.rewind()
        try {
            interpreter.run(input, output)
        } catch (e: IllegalArgumentException) {
            throw DeepSquareError("LiteRT could not run the model: ${e.message}", e)
        } catch (e: IllegalStateException) {
            throw DeepSquareError("LiteRT could not run the model: ${e.message}", e)
        }
        return output[0].copyOf()
    }

    override fun close() {
        interpreter.close()
        gpu?.close()
    }

    companion object {
        fun create(bundle: AppBundle, settings: RunSettings): Classifier {
            if (settings.threads !in 1..64) throw DeepSquareError("threads must be 1..64, got ${settings.threads}")
            val start = System.nanoTime()
            val model = ByteBuffer.allocateDirect(bundle.modelBytes.size).order(ByteOrder.nativeOrder())
            model.put(bundle.modelBytes)
            model.rewind()
            val options = Interpreter.Options().setNumThreads(settings.threads)
            var gpu: GpuDelegate? = null
            if (settings.useGpu) {
                val compatibility = CompatibilityList()
                if (!compatibility.isDelegateSupportedOnThisDevice) {
                    compatibility.close()
                    throw DeepSquareError("the GPU delegate is not supported on this device; switch GPU off")
                }
                gpu = GpuDelegate(compatibility.bestOptionsForThisDevice)
                compatibility.close()
                options.addDelegate(gpu)
            } else {
                options.setUseXNNPACK(true)
            }
            val interpreter =
                try {
                    Interpreter(model, options)
                } catch (e: IllegalArgumentException) {
                    gpu?.close()
                    throw DeepSquareError("LiteRT cannot load the model: ${e.message}", e)
                } catch (e: IllegalStateException) {
                    gpu?.close()
                    throw DeepSquareError("LiteRT cannot load the model: ${e.message}", e)
                }
            val shape = interpreter.getInputTensor(0).shape()
            val expected = intArrayOf(1, bundle.meta.inputSize, bundle.meta.inputSize, 3)
            if (!shape.contentEquals(expected)) {
                interpreter.close()
                gpu?.close()
                throw DeepSquareError(
                    "the model takes ${shape.contentToString()}, the bundle says ${expected.contentToString()}",
                )
            }
            val initMs = (System.nanoTime() - start) / 1e6
            return Classifier(bundle.meta, settings, interpreter, gpu, initMs)
        }
    }
}
