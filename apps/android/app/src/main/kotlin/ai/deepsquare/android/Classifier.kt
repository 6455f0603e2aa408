package ai.deepsquare.android

import ai.deepsquare.core.BundleMeta
import ai.deepsquare.core.DeepSquareError
import ai.deepsquare.core.FormatEntry
import ai.deepsquare.core.ModelInput
import ai.deepsquare.core.ModelShapes
import ai.deepsquare.core.SelfCheck
import ai.deepsquare.core.SelfCheckResult
import android.content.Context
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.Environment
import com.google.ai.edge.litert.LiteRtException
import com.google.ai.edge.litert.TensorBuffer
import java.io.Closeable

/** How to run the model: LiteRT's CPU accelerator (XNNPACK) with a thread count, or its GPU accelerator. */
data class RunSettings(val threads: Int, val useGpu: Boolean) {
    /** The accelerator asked for, as the records name it. */
    val accelerator: String get() = if (useGpu) "gpu" else "cpu"
}

/**
 * The bundle's .tflite compiled with LiteRT's CompiledModel API for one accelerator only: CPU, or GPU with no CPU
 * fallback, so that "gpu" in the status line and the records means the GPU ran the whole graph (LiteRT refuses to
 * compile otherwise, and the app says so). Input: the resized bitmap's RGB bytes for a uint8 bundle (the graph
 * normalizes), normalized floats for a float bundle; output: one value per class.
 */
class Classifier private constructor(
    val meta: BundleMeta,
    val entry: FormatEntry,
    val settings: RunSettings,
    private val env: Environment,
    private val model: CompiledModel,
    /** What the runtime's tensor API said about the shapes: "checked", or why not. */
    val shapes: String,
    val initMs: Double,
) : Closeable {
    private val inputs: List<TensorBuffer> = model.createInputBuffers()
    private val outputs: List<TensorBuffer> = model.createOutputBuffers()

    /** Where the model ran, in words for the status line. */
    val ranOn: String
        get() = if (settings.useGpu) "GPU (whole graph, fp32)" else "CPU (XNNPACK, ${settings.threads} threads)"

    /** One inference: [input] (ModelInput.of) -> the model's outputs (logits or probabilities, per entry.outputs). */
    fun run(input: ModelInput): FloatArray =
        try {
            when (input) {
                is ModelInput.Pixels -> inputs[0].writeInt8(input.bytes) // uint8 pixels, byte for byte
                is ModelInput.Floats -> inputs[0].writeFloat(input.values)
            }
            model.run(inputs, outputs)
            outputs[0].readFloat()
        } catch (e: LiteRtException) {
            throw DeepSquareError("LiteRT could not run the model on the ${settings.accelerator}: ${e.message}", e)
        }

    /** The golden self-check: golden.png through the app's own path, compared with golden.json. Null: no golden. */
    fun selfCheck(bundle: AppBundle): SelfCheckResult? {
        val g = bundle.golden ?: return null
        val input = SelfCheck.input(g.rgb, g.width, g.height, meta, entry)
        return SelfCheck.compare(run(input), meta, entry, g.golden.expectation("tflite"))
    }

    override fun close() {
        inputs.forEach { it.close() }
        outputs.forEach { it.close() }
        model.close()
        env.close()
    }

    companion object {
        fun create(context: Context, bundle: AppBundle, settings: RunSettings): Classifier {
            if (settings.threads !in 1..64) throw DeepSquareError("threads must be 1..64, got ${settings.threads}")
            val start = System.nanoTime()
            val env = Environment.create()
            val accelerator = if (settings.useGpu) Accelerator.GPU else Accelerator.CPU
            val available =
                try {
                    env.getAvailableAccelerators()
                } catch (e: LiteRtException) {
                    emptySet()
                }
            if (settings.useGpu && Accelerator.GPU !in available) {
                env.close()
                throw DeepSquareError("LiteRT finds no GPU accelerator on this phone (it has $available): switch GPU off")
            }
            val options = CompiledModel.Options(accelerator)
            if (settings.useGpu) {
                // fp32 so that the golden self-check's tolerance (set for fp32 CPU runs) holds on the GPU too.
                options.gpuOptions = CompiledModel.GpuOptions(precision = CompiledModel.GpuOptions.Precision.FP32)
            } else {
                options.cpuOptions = CompiledModel.CpuOptions(numThreads = settings.threads)
            }
            val model =
                try {
                    CompiledModel.create(context.assets, bundle.entry.file, options, env)
                } catch (e: LiteRtException) {
                    env.close()
                    val hint = if (settings.useGpu) ": the GPU cannot run the whole graph; switch GPU off" else ""
                    throw DeepSquareError("LiteRT cannot compile ${bundle.entry.file} for the ${settings.accelerator} (${e.message})$hint", e)
                }
            val shapes =
                try {
                    checkShapes(model, bundle.meta, bundle.entry)
                } catch (e: DeepSquareError) {
                    model.close()
                    env.close()
                    throw e
                }
            val initMs = (System.nanoTime() - start) / 1e6
            return Classifier(bundle.meta, bundle.entry, settings, env, model, shapes, initMs)
        }

        /**
         * The model's tensors, from LiteRT's own tensor API, against model.json. LiteRT's Kotlin TensorType has no
         * uint8 element type (INT, FLOAT, INT8, BOOLEAN, INT64 in the sources read), so a uint8 input cannot be
         * described and is left to the self-check; the float32 output always can.
         */
        private fun checkShapes(model: CompiledModel, meta: BundleMeta, entry: FormatEntry): String {
            val skipped = ArrayList<String>()
            try {
                val dims = model.getInputTensorType(entry.inputName).layout?.dimensions
                if (dims != null) ModelShapes.checkInput(dims, meta, entry) else skipped += "input (no layout)"
            } catch (e: LiteRtException) {
                skipped += "input (${e.message})"
            }
            try {
                val dims = model.getOutputTensorType(entry.outputName).layout?.dimensions
                if (dims != null) ModelShapes.checkOutput(dims, meta, entry) else skipped += "output (no layout)"
            } catch (e: LiteRtException) {
                skipped += "output (${e.message})"
            }
            return if (skipped.isEmpty()) "shapes checked" else "shape not described by LiteRT: ${skipped.joinToString("; ")}"
        }
    }
}
