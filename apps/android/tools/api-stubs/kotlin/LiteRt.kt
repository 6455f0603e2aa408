// Stand-ins for the parts of LiteRT 2.x's Kotlin API (com.google.ai.edge.litert) the app uses, written from the
// sources of google-ai-edge/LiteRT (litert/kotlin/src/main/kotlin/com/google/ai/edge/litert, snapshot of 2026-08-21,
// after tag v2.2.0; the app's build pins 2.3.0, whose sources were not available here): the same names, parameter
// lists and nullability, no behaviour.
package com.google.ai.edge.litert

import android.content.res.AssetManager

enum class Accelerator(val value: Int) { NONE(0), CPU(1), GPU(2), NPU(3) }

class LiteRtException(message: String) : Exception(message)

abstract class JniHandle internal constructor(internal val handle: Long) : AutoCloseable {
    protected abstract fun destroy()

    final override fun close() = destroy()
}

data class TensorType(val elementType: ElementType, val layout: Layout? = null) {
    enum class ElementType { INT, FLOAT, INT8, BOOLEAN, INT64 }

    data class Layout(val dimensions: List<Int>, val strides: List<Int> = listOf()) {
        val rank: Int get() = dimensions.size
    }
}

class TensorBuffer internal constructor(handle: Long) : JniHandle(handle) {
    @Throws(LiteRtException::class) fun writeInt(data: IntArray) {}

    @Throws(LiteRtException::class) fun writeFloat(data: FloatArray) {}

    @Throws(LiteRtException::class) fun writeInt8(data: ByteArray) {}

    @Throws(LiteRtException::class) fun readFloat(): FloatArray = FloatArray(0)

    @Throws(LiteRtException::class) fun readInt8(): ByteArray = ByteArray(0)

    override fun destroy() {}
}

class Environment private constructor(handle: Long) : JniHandle(handle) {
    @Throws(LiteRtException::class) fun getAvailableAccelerators(): Set<Accelerator> = emptySet()

    override fun destroy() {}

    companion object {
        @Throws(LiteRtException::class) @JvmStatic fun create(options: Map<Int, String> = mapOf()): Environment = Environment(0)
    }
}

class CompiledModel private constructor(handle: Long) : JniHandle(handle) {
    data class CpuOptions(val numThreads: Int? = null, val xnnPackFlags: Int? = null, val xnnPackWeightCachePath: String? = null)

    data class GpuOptions(val precision: Precision? = null) {
        enum class Precision(val value: Int) { DEFAULT(0), FP16(1), FP32(2), FP16_WITH_FP32_ACCUM(3) }
    }

    class Options(internal val accelerators: Set<Accelerator>) {
        constructor(vararg accelerators: Accelerator) : this(setOf(*accelerators))

        var cpuOptions: CpuOptions? = null
        var gpuOptions: GpuOptions? = null
    }

    @Throws(LiteRtException::class) fun createInputBuffers(signatureIndex: Int = 0): List<TensorBuffer> = emptyList()

    @Throws(LiteRtException::class) fun createOutputBuffers(signatureIndex: Int = 0): List<TensorBuffer> = emptyList()

    @Throws(LiteRtException::class)
    fun run(inputs: List<TensorBuffer>, outputs: List<TensorBuffer>, signatureIndex: Int = 0) {}

    @Throws(LiteRtException::class)
    fun getInputTensorType(inputName: String, signature: String = ""): TensorType = TensorType(TensorType.ElementType.FLOAT)

    @Throws(LiteRtException::class)
    fun getOutputTensorType(outputName: String, signature: String = ""): TensorType = TensorType(TensorType.ElementType.FLOAT)

    override fun destroy() {}

    companion object {
        @Throws(LiteRtException::class)
        @JvmStatic
        fun create(assetManager: AssetManager, assetName: String, options: Options = Options(Accelerator.CPU), optionalEnv: Environment? = null): CompiledModel =
            CompiledModel(0)

        @Throws(LiteRtException::class)
        @JvmStatic
        fun create(filePath: String, options: Options = Options(Accelerator.CPU), optionalEnv: Environment? = null): CompiledModel =
            CompiledModel(0)
    }
}
