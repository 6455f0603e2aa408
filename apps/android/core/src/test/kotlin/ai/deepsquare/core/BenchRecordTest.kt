package ai.deepsquare.core

import org.junit.Assert.assertEquals
import org.junit.Test
import java.io.File

/** Latency statistics like runtime/records.py, and the record JSON deepsquare bench --add-records loads. */
class BenchRecordTest {
    private val times = listOf(5.0, 1.25, 3.5, 2.0, 4.75, 10.0, 2.5, 3.0, 2.25, 6.5, 2.75)

    @Test
    fun statisticsMatchPythonsDefinitions() {
        val s = LatencyStats.of(times)
        assertEquals(11, s.runs)
        assertEquals(1.25, s.minMs, 0.0)
        assertEquals(10.0, s.maxMs, 0.0)
        // sorted: 1.25 2 2.25 2.5 2.75 3 3.5 4.75 5 6.5 10; p50 = sorted[5]; p90 at pos 9 -> 6.5
        assertEquals(3.0, s.p50Ms, 0.0)
        assertEquals(6.5, s.p90Ms, 0.0)
        assertEquals(43.5 / 11, s.meanMs, 1e-12)
        val sorted = doubleArrayOf(1.0, 2.0, 3.0, 4.0)
        assertEquals(2.5, LatencyStats.percentile(sorted, 50.0), 0.0)
        assertEquals(3.7, LatencyStats.percentile(sorted, 90.0), 1e-15)
        assertEquals(0.0, LatencyStats.of(listOf(4.0)).stdMs, 0.0)
        assertEquals(Math.sqrt(2.0), LatencyStats.of(listOf(1.0, 3.0)).stdMs, 1e-15)
        expectError("runs must be at least 1") { LatencyStats.of(emptyList()) }
        expectError("finite") { LatencyStats.of(listOf(1.0, Double.NaN)) }
    }

    @Test
    fun warmupIsNotTimed() {
        var clock = 0L
        var calls = 0
        val measured =
            Benchmark.time(warmup = 3, runs = 4, clockNs = { clock }) {
                calls++
                clock += calls * 1_000_000L // call k takes k ms
            }
        assertEquals(7, calls)
        assertEquals(listOf(4.0, 5.0, 6.0, 7.0), measured)
        expectError("runs must be at least 1, got 0") { Benchmark.time(1, 0) {} }
    }

    @Test
    fun recordJsonRoundTripsAndAppends() {
        val meta = Golden.meta
        val record =
            BenchRecord.of(
                meta, times, warmup = 5, threads = 4, initMs = 12.5,
                machine = "JVM test (not a phone)", delegate = "xnnpack", appVersion = "0.1.0",
            )
        val gpu = record.copy(threads = null, initMs = null, extra = record.extra + ("delegate" to "gpu"))
        val text = BenchRecord.append(BenchRecord.listJson(listOf(record)), gpu)
        val rows = Json.parse(text) as List<*>
        assertEquals(2, rows.size)
        val first = rows[0] as Map<*, *>
        assertEquals("deepsquare-bench-record/1", first["schema"])
        assertEquals("litert-android", first["runtime"])
        assertEquals("shufflenetv2_x0_5", first["model"])
        assertEquals(11L, first["runs"])
        assertEquals(3.0, first["p50_ms"])
        assertEquals(mapOf("delegate" to "xnnpack", "input_size" to 64L, "app_version" to "0.1.0"), first["extra"])
        assertEquals(null, (rows[1] as Map<*, *>)["threads"])
        expectError("the records file is not a JSON list of records") { BenchRecord.append("{\"a\": 1}", record) }
        expectError("the records file is not valid JSON") { BenchRecord.append("[{", record) }
        val out = System.getProperty("record.out").orEmpty()
        if (out.isNotEmpty()) {
            // The Python test loads this with deepsquare.runtime.bench_report.load_records and recomputes
            // the statistics from the times kept in extra.
            val withTimes = listOf(record, gpu).map { it.copy(extra = it.extra + ("test_times_ms" to times)) }
            File(out).writeText(BenchRecord.listJson(withTimes))
        }
    }
}
