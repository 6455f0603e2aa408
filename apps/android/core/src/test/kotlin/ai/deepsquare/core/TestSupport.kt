package ai.deepsquare.core

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import javax.imageio.ImageIO

/** apps/testdata/golden: -Dgolden.dir, else found relative to the working directory. */
object Golden {
    val dir: File by lazy {
        val given = System.getProperty("golden.dir").orEmpty()
        val candidates =
            if (given.isNotEmpty()) {
                listOf(given)
            } else {
                listOf("apps/testdata/golden", "../testdata/golden", "../../testdata/golden", "../../../apps/testdata/golden")
            }
        candidates.map(::File).firstOrNull { File(it, "golden.json").isFile }
            ?: throw AssertionError("golden files not found (tried $candidates); pass -Dgolden.dir=apps/testdata/golden")
    }

    @Suppress("UNCHECKED_CAST")
    val json: Map<String, Any?> by lazy { Json.parse(File(dir, "golden.json").readText()) as Map<String, Any?> }

    @Suppress("UNCHECKED_CAST")
    val bundle: Map<String, Any?> get() = json["bundle"] as Map<String, Any?>

    @Suppress("UNCHECKED_CAST")
    val photos: List<Map<String, Any?>> get() = json["photos"] as List<Map<String, Any?>>

    val meta: BundleMeta by lazy { BundleMeta.parse(File(dir, "model.json").readText()) }

    fun file(name: Any?): File = File(dir, name as String)

    /** A PNG's pixels as RGB bytes (HWC); PNG is lossless, so these are exactly Pillow's decoded pixels. */
    fun decodePng(file: File): Triple<ByteArray, Int, Int> {
        val image = ImageIO.read(file) ?: throw AssertionError("ImageIO cannot read $file")
        val w = image.width
        val h = image.height
        val argb = image.getRGB(0, 0, w, h, null, 0, w)
        return Triple(Preprocess.argbToRgb(argb, w, h), w, h)
    }

    fun readFloats(file: File): FloatArray {
        val bytes = ByteBuffer.wrap(file.readBytes()).order(ByteOrder.LITTLE_ENDIAN)
        return FloatArray(bytes.remaining() / 4) { bytes.float }
    }
}

fun numbers(v: Any?): DoubleArray = (v as List<*>).map { (it as Number).toDouble() }.toDoubleArray()

/** Asserts [block] throws a DeepSquareError (nothing else) whose message contains every one of [parts]. */
fun expectError(vararg parts: String, block: () -> Unit): String {
    val message =
        try {
            block()
            throw AssertionError("expected a DeepSquareError mentioning ${parts.toList()}, nothing was thrown")
        } catch (e: DeepSquareError) {
            e.message.orEmpty()
        }
    for (part in parts) {
        if (!message.contains(part)) throw AssertionError("error message <$message> does not mention <$part>")
    }
    return message
}

/**
 * Builds small .tflite flatbuffers by hand (forward layout, offsets patched), for tests that need
 * no real model: Model{version, subgraphs?, buffers, metadata?} with the named metadata buffers.
 */
object MiniTflite {
    private class Writer {
        val bytes = ArrayList<Byte>()
        val pos get() = bytes.size

        fun align(n: Int) {
            while (pos % n != 0) bytes.add(0)
        }

        fun u16(v: Int) {
            bytes.add(v.toByte())
            bytes.add((v shr 8).toByte())
        }

        fun u32(v: Int) {
            for (k in 0 until 4) bytes.add((v shr (8 * k)).toByte())
        }

        fun patch(at: Int, v: Int) {
            for (k in 0 until 4) bytes[at + k] = (v shr (8 * k)).toByte()
        }

        /** A table whose fields are all 4 bytes; returns field id -> slot position. Scalars are written, refs are 0. */
        fun table(nFields: Int, scalars: Map<Int, Int>, refs: Set<Int>): Map<Int, Int> {
            val present = (scalars.keys + refs).sorted()
            align(4)
            val vtable = pos
            u16(4 + 2 * nFields)
            u16(4 + 4 * present.size)
            for (id in 0 until nFields) u16(if (id in present) 4 + 4 * present.indexOf(id) else 0)
            align(4)
            val table = pos
            u32(table - vtable)
            val slots = HashMap<Int, Int>()
            slots[-1] = table
            for (id in present) {
                slots[id] = pos
                u32(scalars[id] ?: 0)
            }
            return slots
        }

        /** A vector of [n] uoffsets; returns the element slot positions. */
        fun offsetVector(at: Int, n: Int): List<Int> {
            align(4)
            patch(at, pos - at)
            u32(n)
            return List(n) { pos.also { u32(0) } }
        }

        fun byteVector(at: Int, data: ByteArray) {
            align(4)
            patch(at, pos - at)
            u32(data.size)
            data.forEach { bytes.add(it) }
        }

        fun intVector(at: Int, data: IntArray) {
            align(4)
            patch(at, pos - at)
            u32(data.size)
            data.forEach { u32(it) }
        }

        fun link(at: Int, target: Int) = patch(at, target - at)
    }

    fun build(
        metadata: List<Pair<String, ByteArray>>,
        identifier: String = "TFL3",
        inputShape: IntArray? = null,
        outputShape: IntArray? = null,
        withMetadataField: Boolean = true,
    ): ByteArray {
        val w = Writer()
        w.u32(0)
        identifier.forEach { w.bytes.add(it.code.toByte()) }
        val refs = mutableSetOf(4)
        if (withMetadataField) refs += 6
        if (inputShape != null && outputShape != null) refs += 2
        val model = w.table(8, mapOf(0 to 3), refs)
        w.patch(0, model.getValue(-1))
        if (2 in refs) {
            val graphSlot = w.offsetVector(model.getValue(2), 1)[0]
            val graph = w.table(5, emptyMap(), setOf(0, 1, 2))
            w.link(graphSlot, graph.getValue(-1))
            val tensorSlots = w.offsetVector(graph.getValue(0), 2)
            for ((k, shape) in listOf(inputShape!!, outputShape!!).withIndex()) {
                val tensor = w.table(4, emptyMap(), setOf(0))
                w.link(tensorSlots[k], tensor.getValue(-1))
                w.intVector(tensor.getValue(0), shape)
            }
            w.intVector(graph.getValue(1), intArrayOf(0))
            w.intVector(graph.getValue(2), intArrayOf(1))
        }
        // Buffer 0 is the empty buffer, as in every TFLite file; then one per metadata entry.
        val bufferSlots = w.offsetVector(model.getValue(4), 1 + metadata.size)
        w.link(bufferSlots[0], w.table(3, emptyMap(), emptySet()).getValue(-1))
        metadata.forEachIndexed { k, (_, data) ->
            val buffer = w.table(3, emptyMap(), setOf(0))
            w.link(bufferSlots[k + 1], buffer.getValue(-1))
            w.byteVector(buffer.getValue(0), data)
        }
        if (withMetadataField) {
            val entrySlots = w.offsetVector(model.getValue(6), metadata.size)
            metadata.forEachIndexed { k, (name, _) ->
                val entry = w.table(2, mapOf(1 to k + 1), setOf(0))
                w.link(entrySlots[k], entry.getValue(-1))
                w.byteVector(entry.getValue(0), name.toByteArray())
            }
        }
        return w.bytes.toByteArray()
    }
}
