package ai.deepsquare.core

import com.google.gson.JsonArray

import kotlin.math.ceil
import kotlin.math.floor
import kotlin.math.sqrt

/** Latency statistics of the timed runs (warm-up runs are not in [timesMs]); milliseconds. */
data class LatencyStats(
    val runs: Int,
    val meanMs: Double,
    val stdMs: Double,
    val p50Ms: Double,
    val p90Ms: Double,
    val minMs: Double,
    val maxMs: Double,
) {
    companion object {
        /** Linear-interpolated percentile of a sorted list, q in [0, 100] (runtime/records.py percentile). */
        fun percentile(sorted: DoubleArray, q: Double): Double {
            if (sorted.isEmpty()) return Double.NaN
            val pos = (sorted.size - 1) * q / 100
            val low = floor(pos).toInt()
            val high = ceil(pos).toInt()
            return sorted[low] + (sorted[high] - sorted[low]) * (pos - low)
        }

        fun of(timesMs: List<Double>): LatencyStats {
            if (timesMs.isEmpty()) throw DeepSquareError("no timed runs: runs must be at least 1")
            if (timesMs.any { !it.isFinite() || it < 0 }) throw DeepSquareError("latencies must be finite and >= 0")
            val sorted = timesMs.toDoubleArray().also { it.sort() }
            val mean = sorted.sum() / sorted.size
            // Sample standard deviation (statistics.stdev), two-pass.
            val std = if (sorted.size > 1) sqrt(sorted.sumOf { (it - mean) * (it - mean) } / (sorted.size - 1)) else 0.0
            return LatencyStats(
                runs = sorted.size,
                meanMs = mean,
                stdMs = std,
                p50Ms = percentile(sorted, 50.0),
                p90Ms = percentile(sorted, 90.0),
                minMs = sorted.first(),
                maxMs = sorted.last(),
            )
        }
    }
}

/** Times [block]: [warmup] untimed calls, then [runs] timed ones; [clockNs] is System::nanoTime by default. */
object Benchmark {
    fun time(warmup: Int, runs: Int, clockNs: () -> Long = System::nanoTime, block: () -> Unit): List<Double> {
        if (warmup < 0) throw DeepSquareError("warm-up runs must be >= 0, got $warmup")
        if (runs < 1) throw DeepSquareError("runs must be at least 1, got $runs")
        repeat(warmup) { block() }
        return List(runs) {
            val t0 = clockNs()
            block()
            (clockNs() - t0) / 1e6
        }
    }
}

/** One "deepsquare-bench-record/1" row (runtime/records.py BenchRecord), as the app writes it. */
data class BenchRecord(
    val model: String,
    val variant: String,
    val runtime: String,
    val threads: Int?,
    val warmup: Int,
    val stats: LatencyStats,
    val initMs: Double?,
    val machine: String,
    val extra: Map<String, Any?> = emptyMap(),
    /** The LiteRT API that ran it: the app uses CompiledModel. */
    val api: String? = "CompiledModel",
) {
    fun toMap(): Map<String, Any?> =
        linkedMapOf(
            "model" to model,
            "variant" to variant,
            "runtime" to runtime,
            "threads" to threads,
            "warmup" to warmup,
            "runs" to stats.runs,
            "mean_ms" to stats.meanMs,
            "std_ms" to stats.stdMs,
            "p50_ms" to stats.p50Ms,
            "p90_ms" to stats.p90Ms,
            "min_ms" to stats.minMs,
            "init_ms" to initMs,
            "machine" to machine,
            "max_ms" to stats.maxMs,
            "extra" to extra,
            "schema" to SCHEMA,
            "api" to api,
        )

    companion object {
        const val SCHEMA = "deepsquare-bench-record/1"
        const val RUNTIME = "litert-android"

        /**
         * A record for [meta] from timed runs (warm-up excluded). [accelerator] is the one that ran the whole
         * graph ("cpu" or "gpu", LiteRT CompiledModel), [input] the entry's input kind ("uint8" or "float32").
         */
        fun of(
            meta: BundleMeta,
            timesMs: List<Double>,
            warmup: Int,
            threads: Int?,
            initMs: Double?,
            machine: String,
            accelerator: String,
            input: String,
            appVersion: String,
        ): BenchRecord =
            BenchRecord(
                model = meta.arch,
                variant = meta.variant,
                runtime = RUNTIME,
                threads = threads,
                warmup = warmup,
                stats = LatencyStats.of(timesMs),
                initMs = initMs,
                machine = machine,
                extra =
                    linkedMapOf(
                        "accelerator" to accelerator,
                        "input" to input,
                        "input_size" to meta.inputSize,
                        "app_version" to appVersion,
                    ),
            )

        /** The records file's JSON: a list of records, as `deepsquare bench --add-records FILE` loads it. */
        fun listJson(records: List<BenchRecord>): String = StrictJson.write(records.map { it.toMap() }) + "\n"

        /**
         * [existing] (a records file's text, or null) with [record] appended; the rows already there are
         * kept as they are. A file that is not a JSON list of objects is an error rather than overwritten.
         */
        fun append(existing: String?, record: BenchRecord): String {
            val rows = JsonArray()
            if (existing != null && existing.isNotBlank()) {
                val parsed =
                    try {
                        StrictJson.tree(existing)
                    } catch (e: StrictJson.Failure) {
                        throw DeepSquareError("the records file cannot be read (${e.why}); move it away", e)
                    }
                if (!parsed.isJsonArray || !parsed.asJsonArray.all { it.isJsonObject }) {
                    throw DeepSquareError("the records file is not a JSON list of records; move it away")
                }
                rows.addAll(parsed.asJsonArray)
            }
            rows.add(StrictJson.gson.toJsonTree(record.toMap()))
            return StrictJson.write(rows) + "\n"
        }
    }
}
