package ai.deepsquare.core

/**
 * A small, dependency-free reader for the parts of a .tflite flatbuffer the app needs
 * (tflite/schema.fbs): Model.metadata (named buffers), Model.buffers and the first subgraph's
 * input/output tensor shapes. Every offset is bounds-checked: a truncated or corrupt file is a
 * [DeepSquareError], never an IndexOutOfBoundsException.
 *
 * Flatbuffers: little-endian; the root table's uoffset is at byte 0, the file identifier at 4..8;
 * a table starts with an soffset to its vtable (vtable = table - soffset); the vtable holds
 * u16 vtable size, u16 table size, then one u16 offset per field (0 = absent). Reference fields
 * hold a u32 offset relative to where it is stored; vectors and strings start with a u32 length.
 */
class TfliteModel private constructor(private val buf: ByteArray, private val source: String) {
    /** Named metadata buffers (Model.metadata), in file order. */
    val metadata: Map<String, ByteArray>

    /** Shapes of the first subgraph's inputs and outputs (empty when the file has no subgraph). */
    val inputShapes: List<IntArray>
    val outputShapes: List<IntArray>

    init {
        if (buf.size < 8) corrupt("the file is ${buf.size} bytes, too short for a flatbuffer")
        val ident = String(buf, 4, 4, Charsets.ISO_8859_1)
        if (ident != IDENTIFIER) {
            throw DeepSquareError(
                "$source is not a TFLite model: file identifier ${Json.pyRepr(printable(ident))}, expected 'TFL3'",
            )
        }
        val model = table(u32(0).toLong(), "Model")
        val buffers = tableVector(model, 4, "Model.buffers")
        // Every buffer (the weights too) must lie inside the file: a truncated download is caught here.
        buffers.forEachIndexed { k, b -> bufferExtent(b, "buffer $k") }
        val entries = tableVector(model, 6, "Model.metadata")
        val out = LinkedHashMap<String, ByteArray>()
        for (entry in entries) {
            val name = string(entry, 0, "Metadata.name") ?: corrupt("a metadata entry has no name")
            val index = scalarU32(entry, 1)
            if (index < 0 || index >= buffers.size) {
                corrupt("metadata '$name' points at buffer $index of ${buffers.size}")
            }
            out[name] = bufferData(buffers[index.toInt()], name)
        }
        metadata = out
        val subgraphs = tableVector(model, 2, "Model.subgraphs")
        if (subgraphs.isEmpty()) {
            inputShapes = emptyList()
            outputShapes = emptyList()
        } else {
            val graph = subgraphs[0]
            val tensors = tableVector(graph, 0, "SubGraph.tensors")
            fun shapes(field: Int, what: String): List<IntArray> =
                intVector(graph, field, what).map { t ->
                    if (t < 0 || t >= tensors.size) corrupt("$what refers to tensor $t of ${tensors.size}")
                    intVector(tensors[t], 0, "Tensor.shape")
                }
            inputShapes = shapes(1, "SubGraph.inputs")
            outputShapes = shapes(2, "SubGraph.outputs")
        }
    }

    private fun printable(s: String) = s.map { if (it in ' '..'~') it else '?' }.joinToString("")

    private fun corrupt(why: String): Nothing =
        throw DeepSquareError("$source is not a valid TFLite flatbuffer ($why); re-export the model")

    private fun check(pos: Long, len: Long, what: String) {
        if (pos < 0 || len < 0 || pos > buf.size || len > buf.size - pos) { // no overflow for huge lengths
            corrupt("$what at byte $pos (+$len) lies outside the ${buf.size}-byte file; truncated?")
        }
    }

    private fun u8(p: Int) = buf[p].toInt() and 0xff

    private fun u16(p: Long): Int {
        check(p, 2, "a u16")
        val i = p.toInt()
        return u8(i) or (u8(i + 1) shl 8)
    }

    private fun i32(p: Long): Int {
        check(p, 4, "a 32-bit value")
        val i = p.toInt()
        return u8(i) or (u8(i + 1) shl 8) or (u8(i + 2) shl 16) or (u8(i + 3) shl 24)
    }

    private fun u32(p: Long): Long = i32(p).toLong() and 0xffffffffL

    private fun u64(p: Long): Long {
        check(p, 8, "a 64-bit value")
        return u32(p) or (u32(p + 4) shl 32)
    }

    /** A table position, with its vtable checked. */
    private fun table(pos: Long, what: String): Long {
        check(pos, 4, what)
        val vtable = pos - i32(pos)
        check(vtable, 4, "$what's vtable")
        val vsize = u16(vtable)
        if (vsize < 4 || vsize % 2 != 0) corrupt("$what's vtable has size $vsize")
        check(vtable, vsize.toLong(), "$what's vtable")
        check(pos, u16(vtable + 2).toLong(), what)
        return pos
    }

    /** The absolute position of field [id] in [table], or -1 when absent. */
    private fun field(table: Long, id: Int): Long {
        val vtable = table - i32(table)
        val vsize = u16(vtable)
        val slot = 4 + 2 * id
        if (slot + 2 > vsize) return -1
        val off = u16(vtable + slot)
        return if (off == 0) -1 else table + off
    }

    private fun scalarU32(table: Long, id: Int): Long {
        val p = field(table, id)
        return if (p < 0) 0 else u32(p)
    }

    private fun indirect(p: Long): Long = p + u32(p)

    /** (start of elements, count) of the vector in field [id], or null when absent. */
    private fun vector(table: Long, id: Int, elementSize: Int, what: String): Pair<Long, Int>? {
        val p = field(table, id)
        if (p < 0) return null
        val v = indirect(p)
        val n = u32(v)
        check(v + 4, n * elementSize, what)
        return Pair(v + 4, n.toInt())
    }

    private fun tableVector(table: Long, id: Int, what: String): List<Long> {
        val (start, n) = vector(table, id, 4, what) ?: return emptyList()
        return (0 until n).map { k -> table(indirect(start + 4L * k), what) }
    }

    private fun intVector(table: Long, id: Int, what: String): IntArray {
        val (start, n) = vector(table, id, 4, what) ?: return IntArray(0)
        return IntArray(n) { k -> i32(start + 4L * k) }
    }

    private fun string(table: Long, id: Int, what: String): String? {
        val (start, n) = vector(table, id, 1, what) ?: return null
        return String(buf, start.toInt(), n, Charsets.UTF_8)
    }

    /** (start, size) of a Buffer's bytes: inline `data`, or file `offset`/`size` (offset > 1). */
    private fun bufferExtent(buffer: Long, what: String): Pair<Long, Long> {
        val data = vector(buffer, 0, 1, "$what data")
        if (data != null && data.second > 0) return Pair(data.first, data.second.toLong())
        val offsetField = field(buffer, 1)
        val sizeField = field(buffer, 2)
        if (offsetField >= 0 && sizeField >= 0) {
            val offset = u64(offsetField)
            val size = u64(sizeField)
            if (offset > 1) {
                check(offset, size, "$what data")
                return Pair(offset, size)
            }
        }
        return Pair(0L, 0L)
    }

    private fun bufferData(buffer: Long, name: String): ByteArray {
        val (start, size) = bufferExtent(buffer, "metadata '$name'")
        return buf.copyOfRange(start.toInt(), (start + size).toInt())
    }

    companion object {
        const val IDENTIFIER = "TFL3"
        const val BUNDLE_KEY = "deepsquare_bundle"
        const val LABELS_KEY = "labels.txt"

        fun read(bytes: ByteArray, source: String = "model.tflite"): TfliteModel =
            try {
                TfliteModel(bytes, source)
            } catch (e: DeepSquareError) {
                throw e
            } catch (e: RuntimeException) { // belt and braces: no other exception leaves the reader
                throw DeepSquareError(
                    "$source is not a valid TFLite flatbuffer (${e.javaClass.simpleName}); re-export the model",
                    e,
                )
            }
    }
}

/** What a deepsquare .tflite carries about itself: the bundle JSON and the labels. */
data class EmbeddedBundle(
    val meta: BundleMeta,
    val bundleJson: String,
    val labels: List<String>?,
    val inputShape: IntArray?,
    val outputShape: IntArray?,
) {
    companion object {
        /**
         * Read the "deepsquare_bundle" metadata of a .tflite (and "labels.txt" when present), and
         * check it agrees with the model's tensors: input [1, S, S, 3] with S = input_size, output
         * [1, C] with C = number of classes.
         */
        fun read(bytes: ByteArray, source: String = "model.tflite"): EmbeddedBundle {
            val model = TfliteModel.read(bytes, source)
            val present =
                if (model.metadata.isEmpty()) {
                    "it has no metadata at all"
                } else {
                    "it has ${model.metadata.keys.joinToString(", ") { "'$it'" }}"
                }
            val raw =
                model.metadata[TfliteModel.BUNDLE_KEY]
                    ?: throw DeepSquareError(
                        "$source has no '${TfliteModel.BUNDLE_KEY}' metadata ($present); " +
                            "export it with deepsquare-export --to tflite, or put model.json beside it",
                    )
            val meta = BundleMeta.parse(raw, "$source metadata '${TfliteModel.BUNDLE_KEY}'")
            val labels = model.metadata[TfliteModel.LABELS_KEY]?.toString(Charsets.UTF_8)?.split("\n")
            if (labels != null && labels != meta.classes) {
                throw DeepSquareError(
                    "$source: labels.txt (${labels.size} lines) disagrees with the bundle's " +
                        "${meta.classes.size} classes",
                )
            }
            val input = model.inputShapes.firstOrNull()
            val output = model.outputShapes.firstOrNull()
            checkShapes(meta, input, output, source)
            return EmbeddedBundle(meta, raw.toString(Charsets.UTF_8), labels, input, output)
        }

        fun checkShapes(meta: BundleMeta, input: IntArray?, output: IntArray?, source: String) {
            val s = meta.inputSize
            if (input != null && !(input.size == 4 && input[1] == s && input[2] == s && input[3] == 3)) {
                throw DeepSquareError(
                    "$source: the model input is ${input.contentToString()}, but the bundle says " +
                        "input_size $s (expected [1, $s, $s, 3], NHWC)",
                )
            }
            if (output != null && output.isNotEmpty() && output.last() != meta.classes.size) {
                throw DeepSquareError(
                    "$source: the model output is ${output.contentToString()}, but the bundle lists " +
                        "${meta.classes.size} classes",
                )
            }
        }
    }

    override fun equals(other: Any?): Boolean = other is EmbeddedBundle && other.bundleJson == bundleJson

    override fun hashCode(): Int = bundleJson.hashCode()
}
