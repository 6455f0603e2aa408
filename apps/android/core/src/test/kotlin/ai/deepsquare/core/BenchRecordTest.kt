package ai.deepsquare.core

import com.google.gson.JsonParser
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
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
        val meta = Fixtures.meta
        val record =
            BenchRecord.of(
                meta, times, warmup = 5, threads = 4, initMs = 12.5,
                machine = "JVM test (not a phone)", accelerator = "cpu", input = "uint8", appVersion = "0.1.0",
            )
        val gpu = record.copy(threads = null, initMs = null, extra = record.extra + ("accelerator" to "gpu"))
        val text = BenchRecord.append(BenchRecord.listJson(listOf(record)), gpu)
        val rows = JsonParser.parseString(text).asJsonArray
        assertEquals(2, rows.size())
        val first = rows[0].asJsonObject
        assertEquals("deepsquare-bench-record/1", first["schema"].asString)
        assertEquals("litert-android", first["runtime"].asString)
        assertEquals("vanilla_cnn", first["model"].asString)
        assertEquals("11", first["runs"].toString()) // a whole number stays one
        assertEquals(3.0, first["p50_ms"].asDouble, 0.0)
        val extra = first["extra"].asJsonObject
        assertEquals(listOf("accelerator", "input", "input_size", "app_version"), extra.keySet().toList())
        assertEquals("cpu", extra["accelerator"].asString)
        assertEquals("CompiledModel", first["api"].asString)
        assertTrue(rows[1].asJsonObject["threads"].isJsonNull) // written as null, not left out
        // Rows already in the file are kept as they were written.
        val kept = BenchRecord.append("[{\"runs\": 3, \"x\": 1.50}]", record)
        assertTrue(kept, kept.contains("\"x\": 1.50"))
        expectError("the records file is not a JSON list of records") { BenchRecord.append("{\"a\": 1}", record) }
        expectError("the records file cannot be read (not valid JSON") { BenchRecord.append("[{", record) }
        val out = System.getProperty("record.out").orEmpty()
        if (out.isNotEmpty()) {
            // The Python test loads this with deepsquare.runtime.bench_report.load_records and recomputes
            // the statistics from the times kept in extra.
            val withTimes = listOf(record, gpu).map { it.copy(extra = it.extra + ("test_times_ms" to times)) }
            File(out).writeText(BenchRecord.listJson(withTimes))
        }
    }
}
