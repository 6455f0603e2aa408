package ai.deepsquare.core

import kotlin.math.exp

/** One row of the top-k list. */
data class Prediction(val index: Int, val label: String, val probability: Double, val logit: Double)

object Classify {
    /** Softmax in float64, max-shifted (as numpy: exp(logits.astype(float64) - max) / sum). */
    fun softmax(logits: DoubleArray): DoubleArray {
        if (logits.isEmpty()) throw DeepSquareError("the model returned no logits")
        if (logits.any { it.isNaN() }) throw DeepSquareError("the model returned NaN logits")
        val max = logits.max()
        val exps = DoubleArray(logits.size) { exp(logits[it] - max) }
        val total = exps.sum()
        return DoubleArray(logits.size) { exps[it] / total }
    }

    fun softmax(logits: FloatArray): DoubleArray = softmax(DoubleArray(logits.size) { logits[it].toDouble() })

    /** The k best classes, highest logit first; ties go to the lower index. */
    fun topK(logits: DoubleArray, classes: List<String>, k: Int = 5): List<Prediction> {
        if (logits.size != classes.size) {
            throw DeepSquareError("the model returned ${logits.size} logits for ${classes.size} classes")
        }
        if (k < 1) throw DeepSquareError("k must be at least 1, got $k")
        val probs = softmax(logits)
        return logits.indices
            .sortedWith(compareByDescending<Int> { logits[it] }.thenBy { it })
            .take(minOf(k, logits.size))
            .map { Prediction(it, classes[it], probs[it], logits[it]) }
    }

    fun topK(logits: FloatArray, classes: List<String>, k: Int = 5): List<Prediction> =
        topK(DoubleArray(logits.size) { logits[it].toDouble() }, classes, k)

    /** Top-k of a model's outputs as [entry] says it returns them: logits, or probabilities (ranked by log p). */
    fun topK(outputs: FloatArray, entry: FormatEntry, classes: List<String>, k: Int = 5): List<Prediction> =
        if (entry.outputs == "probabilities") {
            topK(DoubleArray(outputs.size) { kotlin.math.ln(maxOf(outputs[it].toDouble(), Double.MIN_VALUE)) }, classes, k)
        } else {
            topK(outputs, classes, k)
        }
}
